"""Checks a sale's invariants across Redis and SQL and reports them as plain data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from flashsale.auctionaudit import audit_auction
from flashsale.couponaudit import audit_coupons
from flashsale.groupaudit import audit_groups
from flashsale.keys import SaleKeys
from flashsale.order import OrderView
from flashsale.persister import Persister
from inventory.ledger import Ledger


@dataclass
class AuditReport:
    """The outcome of one audit; ``ok`` is true only when every invariant holds."""

    sale_id: int
    checks: dict[str, bool] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return bool(self.checks) and all(self.checks.values())

    def to_json(self) -> dict[str, Any]:
        """The JSON shape ``livesell audit`` prints."""
        return {
            "sale_id": self.sale_id,
            "ok": self.ok,
            "checks": self.checks,
            "figures": self.figures,
            "problems": self.problems[:50],
        }


async def audit_sale(
    redis: Redis, ledger: Ledger, prefix: str, sale_id: int, sync: bool = True
) -> AuditReport:
    """Check stock conservation, per-user limits and Redis/SQL agreement for one sale.

    With ``sync`` the sale's event stream is first drained into SQL (idempotently), so that
    events still in flight are not reported as drift.
    """
    report = AuditReport(sale_id)
    keys = SaleKeys.of(prefix, sale_id)
    sale = await ledger.get_sale(sale_id)
    if sync:
        await Persister(redis, ledger, prefix, consumer="audit").drain(sale_id)
    meta = await redis.hgetall(keys.meta)
    if not meta:
        report.checks["redis_state_present"] = False
        report.problems.append("sale has no state in Redis")
        return report
    total = int(meta[b"total"])
    remaining = int(meta[b"remaining"])
    limit = int(meta[b"limit"])
    orders = {
        k.decode(): OrderView.parse(k.decode(), v)
        for k, v in (await redis.hgetall(keys.orders)).items()
    }
    units = Counter[str]()
    held_by_user = Counter[str]()
    for o in orders.values():
        units[o.state] += o.qty
        if o.state in ("reserved", "paid"):
            held_by_user[o.user_id] += o.qty
    report.figures = {
        "initial_stock": total,
        "remaining": remaining,
        "reserved": units["reserved"],
        "paid": units["paid"],
        "cancelled": units["cancelled"],
        "expired": units["expired"],
        "orders": len(orders),
        "buyers": len(held_by_user),
        "per_user_limit": limit,
        "sql_quantity": sale.quantity,
    }
    conserved = total == remaining + units["reserved"] + units["paid"] and remaining >= 0
    report.checks["stock_conserved"] = conserved
    if not conserved:
        report.problems.append(
            f"initial {total} != remaining {remaining} + reserved {units['reserved']}"
            f" + paid {units['paid']}"
        )
    over = {u: n for u, n in held_by_user.items() if n > limit}
    report.checks["per_user_limit"] = not over
    report.problems += [f"user {u} holds {n} > limit {limit}" for u, n in list(over.items())[:20]]
    counters = {k.decode(): int(v) for k, v in (await redis.hgetall(keys.users)).items()}
    drift = {u for u in set(counters) | set(held_by_user) if counters.get(u, 0) != held_by_user[u]}
    report.checks["user_counters_match_orders"] = not drift
    report.problems += [f"user counter drift for {u}" for u in list(drift)[:20]]
    sql = {o.id: o for o in await ledger.orders_for_sale(sale_id)}
    missing = [oid for oid in orders if oid not in sql]
    differ = [oid for oid, o in orders.items() if oid in sql and sql[oid].state != o.state]
    extra = [oid for oid in sql if oid not in orders]
    report.figures.update(
        sql_orders=len(sql), missing_in_sql=len(missing), state_mismatch=len(differ)
    )
    report.checks["redis_orders_in_sql"] = not missing and not differ and not extra
    report.problems += [f"order {o} missing in SQL" for o in missing[:20]]
    report.problems += [f"order {o} state differs in SQL" for o in differ[:20]]
    report.problems += [f"order {o} in SQL but not in Redis" for o in extra[:20]]
    report.checks["sql_quantity_matches"] = sale.quantity == total
    await audit_groups(redis, prefix, sale_id, orders, report)
    await audit_coupons(redis, ledger, prefix, sale_id, orders, report)
    await audit_auction(redis, prefix, sale_id, orders, report)
    return report
