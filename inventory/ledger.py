"""Sales and orders in SQL: the durable record the persister writes from Redis events."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from sqlalchemy import ColumnElement, false, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.database import Database
from inventory.errors import NotFound
from inventory.models import ORDER_STATE_RANK, CouponRedemption, Order, Sale, Stream, sale_stream
from inventory.outbox import current_ranks, record_transitions


def in_stream(stream_id: str, lot_ids: Collection[int] = ()) -> ColumnElement[bool]:
    """A WHERE clause over ``Sale``: the stream's sales, and its auction lots' sales.

    A lot's sale names its stream in ``lot_stream_id`` (the room's sale card must not offer it
    for buying); lots made before that column existed are named by the caller
    (``Auctions.lot_ids_for_stream``), whose orders are the show's all the same.
    """
    mine = sale_stream() == stream_id
    return or_(mine, Sale.id.in_(list(lot_ids))) if lot_ids else mine


@dataclass(frozen=True, slots=True)
class SaleRecord:
    """A sale as stored in SQL (stock counts live in Redis while it runs)."""

    id: int
    product_id: int
    stream_id: str | None
    price_cents: int
    quantity: int
    per_user_limit: int
    starts_at_ms: int
    ends_at_ms: int
    hold_s: int
    state: str
    created_by: str
    #: A rehearsal's sale: its orders count in no real figure (keyword-only: subclasses add
    #: fields without defaults).
    rehearsal: bool = field(default=False, kw_only=True)
    #: What a member of the host's store pays, fixed when the sale was made: its price when it
    #: has no member price. None only for sales made before migration 0013, which did not keep it.
    member_price_cents: int | None = field(default=None, kw_only=True)
    #: An auction lot's sale: the stream it sells in (``stream_id`` is None: no sale card).
    lot_stream_id: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order's durable row."""

    id: str
    sale_id: int
    user_id: str
    qty: int
    unit_price_cents: int
    state: str
    created_at_ms: int
    expires_at_ms: int


def _sale(s: Sale) -> SaleRecord:
    return SaleRecord(
        s.id,
        s.product_id,
        s.stream_id,
        s.price_cents,
        s.quantity,
        s.per_user_limit,
        s.starts_at_ms,
        s.ends_at_ms,
        s.hold_s,
        s.state,
        s.created_by,
        rehearsal=bool(s.rehearsal),
        member_price_cents=s.member_price_cents,
        lot_stream_id=s.lot_stream_id,
    )


def _order(o: Order) -> OrderRecord:
    return OrderRecord(
        o.id, o.sale_id, o.user_id, o.qty, o.unit_price_cents, o.state, o.created_at_ms,
        o.expires_at_ms,
    )  # fmt: skip


class OrdersWritten(Protocol):
    """Work that follows an order's write: run right after it commits, in its own transaction.

    Not inside the write's: a longer write transaction on a SQLite file shared by several
    persisters let an audit find a sale's orders missing under load (tests/cluster). Work
    lost to a crash between the two transactions is found by the hook's catch-up sweep.
    """

    async def orders_written(self, session: AsyncSession, order_ids: Sequence[str]) -> None:
        """Called with ``session`` in the transaction that follows the write of ``order_ids``."""
        ...


class Ledger:
    """Repository of sales and orders."""

    def __init__(
        self, db: Database, outbox: bool = True, hooks: Sequence[OrdersWritten] = ()
    ) -> None:
        # ``outbox``: write order events for the shop's webhooks. They about double the
        # persister's SQL time (measured: 2.8x on SQLite, 2.2x on PostgreSQL for 1,000
        # reserved then paid orders), so a server with no webhook URL passes False.
        self._db = db
        self._outbox = outbox
        self._hooks = tuple(hooks)

    async def create_sale(
        self,
        product_id: int,
        price_cents: int,
        quantity: int,
        per_user_limit: int,
        starts_at_ms: int,
        ends_at_ms: int,
        hold_s: int,
        created_by: str,
        stream_id: str | None = None,
        lot_stream_id: str | None = None,
        member_price_cents: int | None = None,
    ) -> SaleRecord:
        """Insert a scheduled sale and return it with its id (a rehearsal if its stream is one).

        ``lot_stream_id``: the stream a lot's sale sells in without being offered on the room's
        sale card (``stream_id`` stays None); its rehearsal flag is copied all the same.
        ``member_price_cents``: the sale's member price (None: it has none), kept so that a sale
        rebuilt from SQL charges members what it did, whatever the product's says by then.
        """
        rec = SaleRecord(
            0, product_id, stream_id, price_cents, quantity, per_user_limit, starts_at_ms,
            ends_at_ms, hold_s, "scheduled", created_by, lot_stream_id=lot_stream_id,
            # Stored as the sale's price when there is none: NULL means "made before 0013".
            member_price_cents=price_cents if member_price_cents is None else member_price_cents,
        )  # fmt: skip
        values = {k: v for k, v in asdict(rec).items() if k not in ("id", "rehearsal")}
        # The flag is read inside the INSERT: a SELECT first would make this transaction a
        # reader that must then upgrade to a writer, which SQLite refuses under load ("database
        # is locked") instead of waiting.
        flagged = stream_id if stream_id is not None else lot_stream_id
        flag = select(Stream.rehearsal).where(Stream.id == flagged).scalar_subquery()
        stmt = (
            insert(Sale)
            .values(**values, created_at_ms=int(time.time() * 1000))
            .values(rehearsal=func.coalesce(flag, false()))
            .returning(Sale.id, Sale.rehearsal)
        )
        async with self._db.transaction() as s:
            sale_id, rehearsal = (await s.execute(stmt)).one()
        return replace(rec, id=sale_id, rehearsal=bool(rehearsal))

    async def get_sale(self, sale_id: int) -> SaleRecord:
        """One sale, or NotFound."""
        async with self._db.session() as s:
            row = await s.get(Sale, sale_id)
            if row is None:
                raise NotFound(f"sale {sale_id} not found", code="sale_not_found")
            return _sale(row)

    async def sales_for_stream(
        self, stream_id: str, now_ms: int, limit: int = 50
    ) -> list[SaleRecord]:
        """The newest ``limit`` sales of ``stream_id`` neither closed nor ended by ``now_ms``.

        Sales that ran out of time are left out here, not after: a stream's history of ended
        sales would otherwise push a "next up" sale out of the ``limit`` newest.
        """
        async with self._db.session() as s:
            rows = await s.scalars(
                select(Sale)
                .where(
                    Sale.stream_id == stream_id, Sale.state != "closed", Sale.ends_at_ms > now_ms
                )
                .order_by(Sale.id.desc())
                .limit(limit)
            )
            return [_sale(r) for r in reversed(list(rows))]

    async def set_sale_window(self, sale_id: int, state: str, start_ms: int, end_ms: int) -> None:
        """Record a sale's state and window after Redis changed them."""
        async with self._db.transaction() as s:
            await s.execute(
                update(Sale)
                .where(Sale.id == sale_id)
                .values(state=state, starts_at_ms=start_ms, ends_at_ms=end_ms)
            )

    async def mark_closed(self, sale_id: int) -> None:
        """Record that a sale is over for good (its window kept as it was)."""
        async with self._db.transaction() as s:
            await s.execute(
                update(Sale)
                .where(Sale.id == sale_id, Sale.state != "closed")
                .values(state="closed")
            )

    async def upsert_orders(self, orders: Iterable[OrderRecord]) -> int:
        """Write orders idempotently: insert, or move to a higher-ranked state; never back.

        With the outbox on, each state change goes into the webhook outbox in the same
        transaction (inventory/outbox.py), so no change is stored without its event.
        """
        now = int(time.time() * 1000)
        orders = list(orders)
        latest: dict[str, OrderRecord] = {}
        for o in orders:
            have = latest.get(o.id)
            if have is None or ORDER_STATE_RANK[o.state] > ORDER_STATE_RANK[have.state]:
                latest[o.id] = o
        if not latest:
            return 0
        rows = [
            {
                "id": o.id,
                "sale_id": o.sale_id,
                "user_id": o.user_id,
                "qty": o.qty,
                "unit_price_cents": o.unit_price_cents,
                "state": o.state,
                "state_rank": ORDER_STATE_RANK[o.state],
                "created_at_ms": o.created_at_ms,
                "expires_at_ms": o.expires_at_ms,
                "updated_at_ms": now,
            }
            for o in latest.values()
        ]
        ins = (postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert)(Order)
        stmt = ins.on_conflict_do_update(
            index_elements=[Order.id],
            set_={
                "state": ins.excluded.state,
                "state_rank": ins.excluded.state_rank,
                "updated_at_ms": ins.excluded.updated_at_ms,
            },
            where=Order.state_rank < ins.excluded.state_rank,
        )
        dialect = self._db.dialect
        async with self._db.transaction() as s:
            if not self._outbox:
                await s.execute(stmt, rows)
            else:
                before = await current_ranks(s, list(latest), lock=dialect == "postgresql")
                await s.execute(stmt, rows)
                await record_transitions(s, dialect, orders, before)
        if self._hooks:
            written = list(latest)
            async with self._db.transaction() as s:  # one write lock for all of them
                for hook in self._hooks:
                    await hook.orders_written(s, written)
        return len(rows)

    async def orders_for_sale(self, sale_id: int) -> list[OrderRecord]:
        """Every order of a sale."""
        async with self._db.session() as s:
            rows = await s.scalars(select(Order).where(Order.sale_id == sale_id))
            return [_order(r) for r in rows]

    async def units_held(self, sale_id: int) -> int:
        """Units of a sale in reserved or paid orders, as SQL knows them."""
        async with self._db.session() as s:
            total = await s.scalar(
                select(func.coalesce(func.sum(Order.qty), 0)).where(
                    Order.sale_id == sale_id, Order.state.in_(("reserved", "paid"))
                )
            )
            return int(total or 0)

    async def sales_to_reconcile(self, now_ms: int) -> list[int]:
        """Sales that need live state: not over by SQL's record, or holding reservations."""
        holding = select(Order.sale_id).where(Order.state == "reserved").distinct()
        async with self._db.session() as s:
            ids = await s.scalars(
                select(Sale.id)
                .where(
                    ((Sale.state != "closed") & (Sale.ends_at_ms > now_ms)) | Sale.id.in_(holding)
                )
                .order_by(Sale.id)
            )
            return list(ids)

    async def get_order(self, order_id: str) -> OrderRecord | None:
        """One order row, or None."""
        async with self._db.session() as s:
            row = await s.get(Order, order_id)
            return None if row is None else _order(row)

    async def buyer_order_ids(
        self, user_id: str, stream_id: str, limit: int = 30, lot_ids: Collection[int] = ()
    ) -> list[str]:
        """The buyer's newest order ids in one stream's sales and lots (sale/user index)."""
        query = (
            select(Order.id)
            .join(Sale, Sale.id == Order.sale_id)
            .where(in_stream(stream_id, lot_ids), Order.user_id == user_id)
            .order_by(Order.created_at_ms.desc())
            .limit(limit)
        )
        async with self._db.session() as s:
            return list(await s.scalars(query))

    async def recent_sales(self, limit: int = 50, stream_id: str | None = None) -> list[SaleRecord]:
        """The newest sales, of one stream when ``stream_id`` is given."""
        query = select(Sale).order_by(Sale.id.desc()).limit(limit)
        if stream_id is not None:
            query = query.where(Sale.stream_id == stream_id)
        async with self._db.session() as s:
            return [_sale(r) for r in await s.scalars(query)]

    async def record_redemptions(self, rows: Iterable[tuple[str, str, int, int]]) -> None:
        """Store (order id, coupon id, discount, at_ms) once per order; a replay changes nothing.

        Call after the orders themselves are stored (each row refers to its order).
        """
        values = [
            {"order_id": o, "coupon_id": c, "discount_cents": d, "at_ms": t} for o, c, d, t in rows
        ]
        if not values:
            return
        ins = (postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert)(
            CouponRedemption
        )
        async with self._db.transaction() as s:
            await s.execute(ins.on_conflict_do_nothing(index_elements=["order_id"]), values)

    async def redemption(self, order_id: str) -> tuple[str, int] | None:
        """The coupon an order was paid with and its discount, as SQL knows them."""
        async with self._db.session() as s:
            row = await s.get(CouponRedemption, order_id)
            return None if row is None else (row.coupon_id, row.discount_cents)
