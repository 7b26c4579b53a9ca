"""The webhook outbox: order events written with the order row, handed out for delivery.

``record_transitions`` runs inside the ledger's transaction that stores the orders, so an
order's state and its event are committed together or not at all (no event without its order,
no order change without its event). ``WebhookOutbox`` is what the deliverer reads and updates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from inventory.database import Database
from inventory.models import ORDER_STATE_RANK, Order, Product, Sale, WebhookEvent, sale_stream

if TYPE_CHECKING:  # the ledger imports this module to call record_transitions
    from inventory.ledger import OrderRecord

#: The event type of each order state (``refund``: a paid group-buy order whose group failed).
EVENT_TYPES = {
    "reserved": "order.reserved",
    "paid": "order.paid",
    "cancelled": "order.cancelled",
    "expired": "order.expired",
    "refund": "order.refund_due",
}


@dataclass(frozen=True, slots=True)
class SaleInfo:
    """What an event says about the order's sale."""

    id: int
    product_id: int
    stream_id: str | None
    currency: str
    rehearsal: bool = False


def publishes(sale: SaleInfo) -> bool:
    """Whether this sale's orders go out as webhooks: not a rehearsal's (inventory/rehearsal.py).

    A shop must never see a practice order as a real one; the flag is the sale's own, frozen
    once it has orders, so a stream switched later changes nothing already sent.
    """
    return not sale.rehearsal


async def current_ranks(
    session: AsyncSession, order_ids: Sequence[str], lock: bool
) -> dict[str, int]:
    """The state rank SQL holds for each of ``order_ids`` (absent: not stored yet).

    ``lock`` (PostgreSQL) takes the rows' locks now, so a concurrent persister cannot move the
    same orders between this read and the upsert.
    """
    ranks: dict[str, int] = {}
    for i in range(0, len(order_ids), 500):
        query = select(Order.id, Order.state_rank).where(Order.id.in_(order_ids[i : i + 500]))
        if lock:
            query = query.with_for_update()
        ranks.update({oid: rank for oid, rank in (await session.execute(query)).all()})
    return ranks


async def _sale_infos(session: AsyncSession, sale_ids: set[int]) -> dict[int, SaleInfo]:
    rows = await session.execute(
        select(Sale.id, Sale.product_id, sale_stream(), Product.currency, Sale.rehearsal)
        .join(Product, Product.id == Sale.product_id)
        .where(Sale.id.in_(sale_ids))
    )
    return {r[0]: SaleInfo(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows.all()}


def event_body(event_id: str, order: OrderRecord, sale: SaleInfo, at_ms: int) -> str:
    """The JSON of one event, as sent and signed (docs/webhooks.md shows it)."""
    return json.dumps(
        {
            "id": event_id,
            "type": EVENT_TYPES.get(order.state, f"order.{order.state}"),
            "created_ms": at_ms,
            "data": {
                "order": {
                    "id": order.id,
                    "sale_id": order.sale_id,
                    "user_id": order.user_id,
                    "qty": order.qty,
                    "unit_price_cents": order.unit_price_cents,
                    "total_cents": order.qty * order.unit_price_cents,
                    "currency": sale.currency,
                    "state": order.state,
                    "created_at_ms": order.created_at_ms,
                    "expires_at_ms": order.expires_at_ms,
                },
                "sale": {"id": sale.id, "product_id": sale.product_id, "stream_id": sale.stream_id},
            },
        },
        separators=(",", ":"),
    )


async def record_transitions(
    session: AsyncSession, dialect: str, orders: Sequence[OrderRecord], before: Mapping[str, int]
) -> int:
    """Add an outbox event for every state change in ``orders`` (in order) beyond ``before``.

    Call in the transaction that upserts ``orders``. A batch may take an order from nothing to
    paid: both ``reserved`` and ``paid`` go out, in that order. A stale lower state (a claimed
    event older than what SQL holds) adds nothing. Returns the events added.
    """
    rank = dict(before)
    changed: list[OrderRecord] = []
    for o in orders:
        r = ORDER_STATE_RANK[o.state]
        if r > rank.get(o.id, 0):
            rank[o.id] = r
            changed.append(o)
    if not changed:
        return 0
    sales = await _sale_infos(session, {o.sale_id for o in changed})
    now = int(time.time() * 1000)
    rows = []
    for o in changed:
        sale = sales.get(o.sale_id)
        if sale is None or not publishes(sale):
            continue
        event_id = f"{o.id}.{o.state}"
        rows.append(
            {
                "event_id": event_id,
                "order_id": o.id,
                "type": EVENT_TYPES.get(o.state, f"order.{o.state}"),
                "body": event_body(event_id, o, sale, now),
                "created_at_ms": now,
                "pending": 1,
                "attempts": 0,
                "next_attempt_ms": now,
                "claimed_by": "",
                "done_urls": "",
                "delivered_at_ms": None,
                "last_error": "",
            }
        )
    if rows:
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(WebhookEvent)
        await session.execute(ins.on_conflict_do_nothing(index_elements=["event_id"]), rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event claimed for delivery."""

    id: int
    event_id: str
    order_id: str
    type: str
    body: str
    attempts: int
    done_urls: frozenset[str]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt's outcome: ``next_ms`` None when every URL took the event."""

    event: OutboxEvent
    next_ms: int | None
    done_urls: frozenset[str]
    error: str = ""


class WebhookOutbox:
    """The deliverer's view of the outbox: claim due events, record each attempt's outcome."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim_due(
        self, consumer: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[OutboxEvent]:
        """Lease up to ``limit`` due events, each the oldest pending event of its order.

        An event waits while an older event of the same order is pending, so a shop sees each
        order's events in order. The lease (``next_attempt_ms`` pushed ``lease_ms`` ahead, our
        name in ``claimed_by``) keeps other deliverers off them; a dead deliverer's lease ends.
        """
        older = aliased(WebhookEvent)
        head = ~exists().where(
            and_(
                older.order_id == WebhookEvent.order_id,
                older.pending == 1,
                older.id < WebhookEvent.id,
            )
        )
        until = now_ms + lease_ms
        due = (
            select(WebhookEvent.id)
            .where(WebhookEvent.pending == 1, WebhookEvent.next_attempt_ms <= now_ms, head)
            .order_by(WebhookEvent.id)
            .limit(limit)
            .correlate(None)  # its own scan of the table, not the UPDATE's row
        )
        async with self._db.session() as s:
            # A read first: an idle outbox costs no write lock (SQLite has one for everyone).
            if await s.scalar(due.with_only_columns(WebhookEvent.id).limit(1)) is None:
                return []
        async with self._db.transaction() as s:
            # One statement picks and leases: on SQLite a transaction that read first and
            # wrote second would fail outright if the persister committed in between.
            await s.execute(
                update(WebhookEvent)
                .where(
                    WebhookEvent.id.in_(due),
                    WebhookEvent.pending == 1,
                    WebhookEvent.next_attempt_ms <= now_ms,
                )
                .values(claimed_by=consumer, next_attempt_ms=until)
                .execution_options(synchronize_session=False)
            )
            rows = await s.scalars(
                select(WebhookEvent)
                .where(
                    WebhookEvent.pending == 1,
                    WebhookEvent.claimed_by == consumer,
                    WebhookEvent.next_attempt_ms == until,
                )
                .order_by(WebhookEvent.id)
            )
            return [
                OutboxEvent(
                    r.id,
                    r.event_id,
                    r.order_id,
                    r.type,
                    r.body,
                    r.attempts,
                    frozenset(u for u in r.done_urls.split("\n") if u),
                )
                for r in rows
            ]

    async def record(self, attempts: Sequence[Attempt], now_ms: int) -> None:
        """Store a pass's outcomes in one transaction (one writer, however many events)."""
        if not attempts:
            return
        async with self._db.transaction() as s:
            for a in attempts:
                done = a.next_ms is None
                await s.execute(
                    update(WebhookEvent)
                    .where(WebhookEvent.id == a.event.id)
                    .values(
                        pending=0 if done else 1,
                        attempts=a.event.attempts + 1,
                        next_attempt_ms=now_ms if done else a.next_ms,
                        delivered_at_ms=now_ms if done else None,
                        claimed_by="",
                        done_urls="" if done else "\n".join(sorted(a.done_urls)),
                        last_error=a.error[:200],
                    )
                )

    async def prune(self, delivered_before_ms: int) -> int:
        """Delete events delivered before ``delivered_before_ms``; returns how many."""
        async with self._db.transaction() as s:
            result = await s.execute(
                delete(WebhookEvent).where(
                    WebhookEvent.pending == 0, WebhookEvent.delivered_at_ms < delivered_before_ms
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def backlog(self) -> int:
        """Events not yet delivered to every URL."""
        async with self._db.session() as s:
            n = await s.scalar(select(func.count()).where(WebhookEvent.pending == 1))
            return int(n or 0)
