"""Rehearsals: a host's practice show, its flag, and the rule that keeps it out of real figures.

A stream is marked a rehearsal when it is made, or switched while it is not live. Each sale
copies the flag from its stream when it is created (``Ledger.create_sale``), and a sale keeps
the flag its orders were made under: switching the stream moves only the sales that have no
order yet. Orders therefore need no column of their own: an order is a rehearsal's exactly
when its sale is (``real_sale()`` in a query, ``is_rehearsal_sale`` for one order's event).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import ColumnElement, exists, select, update

from inventory.catalog import StreamView
from inventory.database import Database
from inventory.errors import Conflict, NotFound
from inventory.models import Order, Sale, Stream


def real_sale() -> ColumnElement[bool]:
    """A WHERE clause over ``Sale``: only sales of real shows (join Order to Sale to use it)."""
    return Sale.rehearsal.is_(False)


async def is_rehearsal(db: Database, stream_id: str) -> bool:
    """Whether ``stream_id`` is a rehearsal (an unknown stream is not)."""
    async with db.session() as s:
        return bool(await s.scalar(select(Stream.rehearsal).where(Stream.id == stream_id)))


async def is_rehearsal_sale(db: Database, sale_id: int) -> bool:
    """Whether a sale (and so each of its orders) belongs to a rehearsal: hooks skip those."""
    async with db.session() as s:
        return bool(await s.scalar(select(Sale.rehearsal).where(Sale.id == sale_id)))


async def rehearsal_sales(db: Database, sale_ids: Iterable[int]) -> set[int]:
    """Which of ``sale_ids`` are rehearsals' sales."""
    ids = list(sale_ids)
    if not ids:
        return set()
    async with db.session() as s:
        rows = await s.scalars(select(Sale.id).where(Sale.id.in_(ids), Sale.rehearsal.is_(True)))
        return set(rows)


async def rehearsal_streams(db: Database, stream_ids: Iterable[str]) -> set[str]:
    """Which of ``stream_ids`` are rehearsals."""
    ids = list(stream_ids)
    if not ids:
        return set()
    async with db.session() as s:
        query = select(Stream.id).where(Stream.id.in_(ids), Stream.rehearsal.is_(True))
        return set(await s.scalars(query))


async def set_rehearsal(db: Database, stream_id: str, on: bool) -> StreamView:
    """Mark a stream a rehearsal (or a real show); refused while it is live or a sale runs."""
    now = int(time.time() * 1000)
    running = (
        select(Sale.id)
        .where(Sale.stream_id == stream_id, Sale.state == "open", Sale.ends_at_ms > now)
        .limit(1)
    )
    # Writes first, reads after (in a transaction of their own): a transaction that reads
    # before it writes is refused by SQLite when another writer is busy, instead of waiting.
    switch = (
        update(Stream)
        .where(Stream.id == stream_id, Stream.status != "live", ~exists(running))
        .values(rehearsal=on)
        .returning(Stream.id, Stream.host_id, Stream.title, Stream.status)
    )
    # Sales with orders keep their flag: those orders were made in practice (or for real).
    follow = (
        update(Sale)
        .where(Sale.stream_id == stream_id, ~exists().where(Order.sale_id == Sale.id))
        .values(rehearsal=on)
        .execution_options(synchronize_session=False)
    )
    async with db.transaction() as s:
        row = (await s.execute(switch)).one_or_none()
        if row is not None:
            await s.execute(follow)
            return StreamView(row.id, row.host_id, row.title, row.status, on)
    async with db.session() as s:
        stream = await s.get(Stream, stream_id)
        sale_id = await s.scalar(running)
    if stream is None:
        raise NotFound(f"stream {stream_id} not found", code="stream_not_found")
    if stream.status == "live":
        raise Conflict("a live show cannot be switched: end it first", code="stream_live")
    what = f"sale {sale_id}" if sale_id is not None else "a sale"
    raise Conflict(f"{what} is running: close it first", code="sale_running")
