"""Order figures for dashboards: units and money by order state, per sale and per stream."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import case, func, select

from inventory.database import Database
from inventory.models import Order, Sale, sale_stream
from inventory.rehearsal import real_sale

#: Order states whose units are held by a buyer (and count towards a show's GMV).
HELD = ("reserved", "paid")


@dataclass(slots=True)
class OrderTotals:
    """Orders, units and money of a set of orders, by state."""

    orders: Counter[str] = field(default_factory=Counter)
    units: Counter[str] = field(default_factory=Counter)
    cents: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, int]:
        """Flat figures: ``<state>_units`` for every state, plus held orders and GMV."""
        out = {f"{state}_units": self.units[state] for state in ("reserved", "paid", "cancelled",
                                                                  "expired")}  # fmt: skip
        out["orders"] = sum(self.orders[s] for s in HELD)
        out["gmv_cents"] = sum(self.cents[s] for s in HELD)
        out["paid_cents"] = self.cents["paid"]
        return out


class Reports:
    """Aggregate queries over the order ledger (read-only)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def by_sale(self, sale_ids: list[int]) -> dict[int, OrderTotals]:
        """Totals of each sale in ``sale_ids`` (a sale with no orders gets empty totals)."""
        out = {sid: OrderTotals() for sid in sale_ids}
        if not sale_ids:
            return out
        query = (
            select(
                Order.sale_id,
                Order.state,
                func.count(),
                func.coalesce(func.sum(Order.qty), 0),
                func.coalesce(func.sum(Order.qty * Order.unit_price_cents), 0),
            )
            .where(Order.sale_id.in_(sale_ids))
            .group_by(Order.sale_id, Order.state)
        )
        async with self._db.session() as s:
            for sale_id, state, n, units, cents in await s.execute(query):
                t = out[sale_id]
                t.orders[state] += int(n)
                t.units[state] += int(units)
                t.cents[state] += int(cents)
        return out

    async def by_stream(self, stream_id: str) -> OrderTotals:
        """Totals of every sale of one stream (a show's orders and GMV so far)."""
        query = (
            select(
                Order.state,
                func.count(),
                func.coalesce(func.sum(Order.qty), 0),
                func.coalesce(func.sum(Order.qty * Order.unit_price_cents), 0),
            )
            .join(Sale, Sale.id == Order.sale_id)
            .where(sale_stream() == stream_id)  # its lots' orders included
            .group_by(Order.state)
        )
        totals = OrderTotals()
        async with self._db.session() as s:
            for state, n, units, cents in await s.execute(query):
                totals.orders[state] += int(n)
                totals.units[state] += int(units)
                totals.cents[state] += int(cents)
        return totals

    async def sales_by_state(self, now_ms: int | None = None) -> dict[str, int]:
        """How many real sales (not rehearsals') are scheduled, open and closed at ``now_ms``."""
        # SQL keeps 'open' until the persister records the close, which lags the sale's window
        # (or never comes for a sale nobody closed): past its end a sale counts as closed.
        now = int(time.time() * 1000) if now_ms is None else now_ms
        past = func.sum(case((Sale.ends_at_ms <= now, 1), else_=0))
        query = select(Sale.state, func.count(), past).where(real_sale()).group_by(Sale.state)
        counts: Counter[str] = Counter()
        async with self._db.session() as s:
            for state, n, n_past in await s.execute(query):
                if state == "open":
                    counts["closed"] += int(n_past or 0)
                    n = int(n) - int(n_past or 0)
                counts[state] += int(n)
        return {state: n for state, n in counts.items() if n}
