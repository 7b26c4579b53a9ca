"""Share-link attribution: the last promoter a viewer came through is credited with their orders.

A visit through ``/live/{stream}?ref=<promoter>`` records a touch (one row per viewer and show:
the last touch wins). Orders are attributed from SQL once the persister has written them: each
order gets exactly one row, naming the promoter whose touch came last before it within the
window (or nobody), with the product's commission rate at that time. Being keyed by user id in
SQL, attribution survives a reload and follows the viewer to a second device.

Orders are attributed as they are written (``orders_written``, a ledger hook run right after),
so the work is proportional to the orders written. A sweep over every order (``attribute_orders``)
only catches up orders written without the hook (by an older persister, or before a crash): it
re-reads the whole orders table, which ran every 2 s before and grew with every order ever sold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.catalog import Actor, require_owner
from inventory.database import Database
from inventory.errors import InvalidInput, NotFound
from inventory.models import (
    AttributionTouch,
    Order,
    OrderAttribution,
    Product,
    ProductCommission,
    Sale,
    sale_stream,
)
from inventory.rehearsal import real_sale

#: How long a touch keeps crediting the promoter (last touch, 7 days).
DEFAULT_WINDOW_MS = 7 * 86_400_000
MAX_COMMISSION_BP = 5000


@dataclass(frozen=True, slots=True)
class PromoterFigures:
    """What one promoter brought: viewers, paid orders, money and commission."""

    promoter_id: str
    visits: int
    orders: int
    paid_cents: int
    commission_cents: int

    def to_json(self) -> dict[str, object]:
        """The API shape."""
        return {"promoter_id": self.promoter_id, "visits": self.visits, "orders": self.orders,
                "paid_cents": self.paid_cents,
                "commission_cents": self.commission_cents}  # fmt: skip


def _now_ms() -> int:
    return int(time.time() * 1000)


class Attribution:
    """Touches, order attributions and commission rates in SQL."""

    def __init__(self, db: Database, window_ms: int = DEFAULT_WINDOW_MS) -> None:
        self._db = db
        self._window_ms = window_ms

    def _insert(self, table: type) -> postgresql.Insert | sqlite.Insert:
        return (postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert)(table)

    async def touch(self, user_id: str, stream_id: str, promoter_id: str) -> bool:
        """Record that ``user_id`` came to a show through ``promoter_id``'s link (not their own)."""
        if user_id == promoter_id:
            return False
        now = _now_ms()
        stmt = self._insert(AttributionTouch).values(
            user_id=user_id, stream_id=stream_id, promoter_id=promoter_id, at_ms=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "stream_id"],
            set_={"promoter_id": promoter_id, "at_ms": now},
        )
        async with self._db.transaction() as s:
            await s.execute(stmt)
        return True

    async def set_commission(self, product_id: int, rate_bp: int, by: Actor) -> None:
        """Set the commission promoters earn on a product (basis points of the order total).

        Only the product's owner or an admin may: the rate reaches every show selling it.
        """
        if not 0 <= rate_bp <= MAX_COMMISSION_BP:
            raise InvalidInput(f"rate_bp must be 0..{MAX_COMMISSION_BP}")
        stmt = self._insert(ProductCommission).values(product_id=product_id, rate_bp=rate_bp)
        stmt = stmt.on_conflict_do_update(index_elements=["product_id"], set_={"rate_bp": rate_bp})
        async with self._db.transaction() as s:
            product = await s.get(Product, product_id) if 1 <= product_id < 2**31 else None
            if product is None:
                raise NotFound(f"product {product_id} not found")
            require_owner(by, product_id, product.owner_id)
            await s.execute(stmt)

    async def attribute_orders(self, limit: int = 500) -> int:
        """Attribute orders of shows not yet attributed (each exactly once); returns how many."""
        async with self._db.transaction() as s:
            return await self._attribute(s, None, limit)

    async def orders_written(self, session: AsyncSession, order_ids: Sequence[str]) -> None:
        """Attribute orders just written (in ``session``'s transaction): O(orders), not O(all)."""
        # Chunks keep the IN list far below SQLite's bound-parameter limit.
        for i in range(0, len(order_ids), 500):
            await self._attribute(session, Order.id.in_(order_ids[i : i + 500]), None)

    async def _attribute(
        self, s: AsyncSession, which: ColumnElement[bool] | None, limit: int | None
    ) -> int:
        stream = sale_stream()  # a lot's order is attributed in its show like any other
        touched = and_(AttributionTouch.user_id == Order.user_id,
                       AttributionTouch.stream_id == stream)  # fmt: skip
        query = (
            select(
                Order.id,
                Order.created_at_ms,
                stream,
                AttributionTouch.promoter_id,
                AttributionTouch.at_ms,
                ProductCommission.rate_bp,
            )
            .join(Sale, Sale.id == Order.sale_id)
            .outerjoin(OrderAttribution, OrderAttribution.order_id == Order.id)
            .outerjoin(AttributionTouch, touched)
            .outerjoin(ProductCommission, ProductCommission.product_id == Sale.product_id)
            # A rehearsal's orders earn no commission: its buyers are practice or synthetic.
            .where(OrderAttribution.order_id.is_(None), stream.is_not(None), real_sale())
            .limit(limit)
        )
        if which is not None:
            query = query.where(which)
        now = _now_ms()
        rows = [
            {"order_id": oid, "stream_id": stream,
             "promoter_id": promoter if promoter is not None
             and touched_at <= created <= touched_at + self._window_ms else "",
             "commission_bp": rate or 0, "at_ms": now}
            for oid, created, stream, promoter, touched_at, rate in await s.execute(query)
        ]  # fmt: skip
        if rows:
            stmt = self._insert(OrderAttribution).on_conflict_do_nothing(
                index_elements=["order_id"]
            )
            await s.execute(stmt, rows)
        return len(rows)

    async def promoter_of(self, order_id: str) -> str | None:
        """The promoter an order is attributed to ('' for nobody; None: not attributed yet)."""
        async with self._db.session() as s:
            row = await s.get(OrderAttribution, order_id)
            return None if row is None else row.promoter_id

    async def leaderboard(
        self, stream_id: str | None = None, promoter_id: str | None = None, limit: int = 20
    ) -> list[PromoterFigures]:
        """Promoters by paid money brought, of one show or of all (or one promoter's own)."""
        total = Order.qty * Order.unit_price_cents
        query = (
            select(
                OrderAttribution.promoter_id,
                func.count(),
                func.sum(total),
                func.sum(total * OrderAttribution.commission_bp / 10_000),
            )
            .join(Order, Order.id == OrderAttribution.order_id)
            .where(OrderAttribution.promoter_id != "", Order.state == "paid")
            .group_by(OrderAttribution.promoter_id)
            .order_by(func.sum(total).desc())
            .limit(limit)
        )
        visits = select(AttributionTouch.promoter_id, func.count()).group_by(
            AttributionTouch.promoter_id
        )
        if stream_id is not None:
            query = query.where(OrderAttribution.stream_id == stream_id)
            visits = visits.where(AttributionTouch.stream_id == stream_id)
        if promoter_id is not None:
            query = query.where(OrderAttribution.promoter_id == promoter_id)
            visits = visits.where(AttributionTouch.promoter_id == promoter_id)
        async with self._db.session() as s:
            sold = {p: (int(n), int(c or 0), int(k or 0)) for p, n, c, k in await s.execute(query)}
            seen = {p: int(n) for p, n in await s.execute(visits)}
        names = list(sold) + [p for p in seen if p not in sold][: max(0, limit - len(sold))]
        return [PromoterFigures(p, seen.get(p, 0), *sold.get(p, (0, 0, 0))) for p in names]
