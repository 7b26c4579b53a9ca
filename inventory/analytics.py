"""Show analytics in SQL: per-minute counters rolled up from Redis, joined with the ledger.

Counters (viewers, chat, reactions, card views and clicks, buy attempts) arrive from Redis as
absolute totals, so a roll-up replaces a stream's rows and can run any number of times. Order
figures come from the ledger itself. Everything here is an aggregate: no user id is stored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import BigInteger, String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from inventory.database import Database
from inventory.ledger import in_stream
from inventory.models import Base, Order, OrderAttribution, Product, Sale
from inventory.rehearsal import is_rehearsal, real_sale

MINUTE_MS = 60_000
#: Order states whose units are held by a buyer: they count towards GMV (as in reports.py).
HELD = ("reserved", "paid")
#: The per-minute columns of the report and the CSV, in order.
MINUTE_FIELDS = (
    "viewers_peak", "viewers_avg", "watch_s", "chat_messages", "reactions", "card_views",
    "card_clicks", "buy_attempts", "orders", "paid_orders", "gmv_cents",
)  # fmt: skip
#: Counters kept per sale (``<metric>:<sale_id>``) and summed per minute and per product.
PER_SALE = {"card_view": "card_views", "card_click": "card_clicks", "buy_attempt": "buy_attempts"}


class ShowStat(Base):
    """One counter of one minute of a show (an aggregate: never a user)."""

    __tablename__ = "show_stats"
    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


def _empty_minute(minute: int) -> dict[str, Any]:
    return {"minute_ms": minute, **dict.fromkeys(MINUTE_FIELDS, 0)}


class ShowAnalytics:
    """Stores rolled-up counters and answers a show's analytics report."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def store(self, stream_id: str, counters: dict[tuple[int, str], int]) -> None:
        """Replace the stream's counters with ``counters`` (absolute totals from Redis).

        A rehearsal's counters are never stored: its audience may be synthetic.
        """
        if not counters or await is_rehearsal(self._db, stream_id):
            return
        rows = [{"stream_id": stream_id, "minute_ms": m, "metric": k, "value": v}
                for (m, k), v in counters.items()]  # fmt: skip
        insert = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
        stmt = insert(ShowStat)
        # An upsert: two roll-ups of one show at once (two workers, or a report beside the
        # periodic roll-up) both deleted, then both inserted the same keys (a 500 on PostgreSQL).
        # The totals are absolute, so the last writer's values are right either way.
        stmt = stmt.on_conflict_do_update(
            index_elements=["stream_id", "minute_ms", "metric"],
            set_={"value": stmt.excluded.value},
        )
        async with self._db.transaction() as s:
            await s.execute(delete(ShowStat).where(ShowStat.stream_id == stream_id))
            await s.execute(stmt, rows)

    async def _counters(self, stream_id: str) -> list[ShowStat]:
        async with self._db.session() as s:
            query = select(ShowStat).where(ShowStat.stream_id == stream_id)
            return list((await s.scalars(query)).all())

    async def _orders(self, stream_id: str, lot_ids: Collection[int]) -> list[Any]:
        query = (
            select(Order.id, Order.user_id, Order.sale_id, Sale.product_id, Product.name,
                   Order.state, Order.qty, Order.unit_price_cents, Order.created_at_ms,
                   Order.updated_at_ms, OrderAttribution.promoter_id)
            .join(Sale, Sale.id == Order.sale_id)
            .join(Product, Product.id == Sale.product_id)
            .outerjoin(OrderAttribution, OrderAttribution.order_id == Order.id)
            .where(in_stream(stream_id, lot_ids), real_sale())
        )  # fmt: skip
        async with self._db.session() as s:
            return list((await s.execute(query)).all())

    async def _products_of(
        self, stream_id: str, lot_ids: Collection[int]
    ) -> dict[int, tuple[int, str]]:
        query = (
            select(Sale.id, Sale.product_id, Product.name)
            .join(Product, Product.id == Sale.product_id)
            .where(in_stream(stream_id, lot_ids))
        )
        async with self._db.session() as s:
            return {sid: (pid, name) for sid, pid, name in await s.execute(query)}

    async def report(self, stream_id: str, lot_ids: Collection[int] = ()) -> dict[str, Any]:
        """The show's totals, its figures by minute, per product and per promoter.

        ``lot_ids``: the stream's auction lots, whose sales do not name the stream.
        """
        minutes: dict[int, dict[str, Any]] = {}
        samples: Counter[int] = Counter()
        sums: Counter[int] = Counter()
        products: dict[int, dict[str, Any]] = {}
        sales = await self._products_of(stream_id, lot_ids)

        def minute(m: int) -> dict[str, Any]:
            return minutes.setdefault(m, _empty_minute(m))

        def product(pid: int, name: str) -> dict[str, Any]:
            return products.setdefault(pid, {
                "product_id": pid, "name": name, "card_views": 0, "card_clicks": 0,
                "buy_attempts": 0, "orders": 0, "paid_orders": 0, "units": 0, "gmv_cents": 0,
            })  # fmt: skip

        for stat in await self._counters(stream_id):
            row = minute(stat.minute_ms)
            metric, _, sale = stat.metric.partition(":")
            if metric == "viewer_samples":
                samples[stat.minute_ms] += stat.value
            elif metric == "viewer_sum":
                sums[stat.minute_ms] += stat.value
            elif metric == "watch_ms":
                row["watch_s"] += stat.value // 1000
            elif metric == "viewers_peak":
                row["viewers_peak"] = max(row["viewers_peak"], stat.value)
            elif metric in ("chat", "reactions"):
                row["chat_messages" if metric == "chat" else "reactions"] += stat.value
            elif metric in PER_SALE:
                row[PER_SALE[metric]] += stat.value
                if sale.isdigit() and int(sale) in sales:
                    product(*sales[int(sale)])[PER_SALE[metric]] += stat.value
        for m, n in samples.items():
            minute(m)["viewers_avg"] = round(sums[m] / n, 2) if n else 0

        promoters: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"orders": 0, "paid_orders": 0, "gmv_cents": 0}
        )
        buyers: set[str] = set()
        units = paid_cents = 0
        for (
            _oid,
            user,
            _sale,
            pid,
            name,
            state,
            qty,
            price,
            created,
            updated,
            promoter,
        ) in await self._orders(stream_id, lot_ids):
            cents = qty * price
            prod = product(pid, name)
            minute(created - created % MINUTE_MS)["orders"] += 1
            prod["orders"] += 1
            if promoter:
                promoters[promoter]["orders"] += 1
            if state == "paid":
                minute(updated - updated % MINUTE_MS)["paid_orders"] += 1
                prod["paid_orders"] += 1
                paid_cents += cents
                if promoter:
                    promoters[promoter]["paid_orders"] += 1
            if state in HELD:
                buyers.add(user)  # counted, never reported
                units += qty
                minute(created - created % MINUTE_MS)["gmv_cents"] += cents
                prod["units"] += qty
                prod["gmv_cents"] += cents
                if promoter:
                    promoters[promoter]["gmv_cents"] += cents

        by_minute = [minutes[m] for m in sorted(minutes)]
        total_samples = sum(samples.values())
        peak = max((r["viewers_peak"] for r in by_minute), default=0)
        totals: dict[str, Any] = {
            f: sum(r[f] for r in by_minute)
            for f in MINUTE_FIELDS
            if f not in ("viewers_peak", "viewers_avg")
        }
        totals.update(
            viewers_peak=peak,
            viewers_avg=round(sum(sums.values()) / total_samples, 2) if total_samples else 0,
            buyers=len(buyers),
            units=units,
            paid_cents=paid_cents,
            # Viewers to buyers: distinct buyers over the peak audience (no viewer ids are kept).
            conversion=round(len(buyers) / peak, 4) if peak else 0,
        )
        return {
            "stream_id": stream_id,
            "totals": totals,
            "by_minute": by_minute,
            "products": sorted(products.values(), key=lambda p: p["product_id"]),
            "promoters": [{"promoter_id": k, **v} for k, v in sorted(promoters.items())],
        }


def to_csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The report's per-minute figures as CSV rows, a header first."""
    rows: list[list[Any]] = [["minute_ms", *MINUTE_FIELDS]]
    rows += [[r["minute_ms"], *(r[f] for f in MINUTE_FIELDS)] for r in report["by_minute"]]
    return rows
