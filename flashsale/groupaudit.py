"""The group-buy part of a sale's audit: whole groups, no orphaned reservation."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from flashsale.group import GroupKeys, GroupView
from flashsale.order import OrderView
from flashsale.redisguard import text

if TYPE_CHECKING:
    from flashsale.audit import AuditReport

LIVE = ("reserved", "paid")


async def audit_groups(
    redis: Redis, prefix: str, sale_id: int, orders: dict[str, OrderView], report: AuditReport
) -> None:
    """Add the group-buy checks and figures of one sale to ``report``."""
    k = GroupKeys.of(prefix, sale_id)
    records = await redis.hgetall(k.groups)
    members = {text(g): m for g, m in (await redis.hgetall(k.members)).items()}
    due = {text(g) for g in await redis.zrange(k.due, 0, -1)}
    held = {text(o) for o in await redis.zrange(k.sale.holds, 0, -1)}
    groups = [GroupView.parse(text(g), r, members.get(text(g))) for g, r in records.items()]
    states = Counter(g.state for g in groups)
    report.figures.update(
        groups_open=states["open"], groups_filled=states["filled"],
        groups_expired=states["expired"],
        refund_orders=sum(1 for o in orders.values() if o.state == "refund"),
    )  # fmt: skip
    problems: list[str] = []  # groups not whole
    orphans: list[str] = []  # units held that nothing will ever release
    owner = Counter[str]()
    for g in groups:
        users = [u for u, _ in g.members]
        if len(set(users)) != len(users):
            problems.append(f"group {g.id} has a user twice")
        for user, oid in g.members:
            owner[oid] += 1
            o = orders.get(oid)
            if o is None or o.user_id != user or o.unit_price_cents != g.price_cents:
                problems.append(f"group {g.id}: member order {oid} missing or not {user}'s")
            elif g.state == "expired" and o.state in LIVE:
                orphans.append(f"group {g.id} expired but order {oid} still holds a unit")
        if g.state == "filled" and len(g.members) != g.size:
            problems.append(f"filled group {g.id} has {len(g.members)} members, not {g.size}")
        if g.state == "open" and g.id not in due:
            orphans.append(f"open group {g.id} is not on the deadline list")
    problems += [f"order {o} belongs to {n} groups" for o, n in owner.items() if n > 1]
    # Every reserved order must be on the holds list, or nothing would ever release its unit.
    orphans += [f"reserved order {o} has no hold" for o, v in orders.items()
                if v.state == "reserved" and o not in held]  # fmt: skip
    report.checks["groups_whole"] = not problems
    report.checks["no_orphaned_reservation"] = not orphans
    report.problems += problems[:25] + orphans[:25]
