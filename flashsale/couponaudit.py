"""The coupon part of a sale's audit: every coupon accounted for, each used once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import Redis

from flashsale.coupons import CouponDrop, CouponKeys
from flashsale.order import OrderView
from flashsale.redisguard import text
from inventory.ledger import Ledger

if TYPE_CHECKING:
    from flashsale.audit import AuditReport


async def audit_coupons(
    redis: Redis, ledger: Ledger, prefix: str, sale_id: int, orders: dict[str, OrderView],
    report: AuditReport,
) -> None:  # fmt: skip
    """Add the coupon checks and figures of one sale to ``report``."""
    k = CouponKeys.of(prefix, sale_id)
    fields = {text(f): v for f, v in (await redis.hgetall(k.drops)).items()}
    drops = [CouponDrop.parse(f, v, fields.get(f"{f}:left")) for f, v in fields.items()
             if "-c" in f and not f.endswith(":left")]  # fmt: skip
    claims: dict[str, list[str]] = {d.id: [] for d in drops}
    for field, state in (await redis.hgetall(k.claims)).items():
        drop_id = text(field).partition("|")[0]
        claims.setdefault(drop_id, []).append(text(state))
    redeemed = {text(o): text(v) for o, v in (await redis.hgetall(k.redeemed)).items()}
    problems: list[str] = []
    for d in drops:
        got = claims.get(d.id, [])
        if d.left < 0 or len(got) + d.left != d.total:
            problems.append(f"drop {d.id}: {len(got)} claimed + {d.left} left != {d.total}")
    used = [s.partition("=")[2] for states in claims.values() for s in states if s != "claimed"]
    if len(used) != len(set(used)) or set(used) != set(redeemed):
        problems.append("used coupons and redeemed orders differ")
    for oid, entry in redeemed.items():
        o = orders.get(oid)
        if o is None or o.state not in ("paid", "refund"):
            problems.append(f"order {oid} took a coupon but is not paid")
        elif await ledger.redemption(oid) != (
            entry.partition("|")[0],
            int(entry.partition("|")[2]),
        ):
            problems.append(f"coupon redemption of order {oid} differs in SQL")
    report.figures.update(
        coupon_drops=len(drops), coupons_claimed=sum(len(c) for c in claims.values()),
        coupons_used=len(used),
    )  # fmt: skip
    report.checks["coupons_accounted"] = not problems
    report.problems += problems[:25]
