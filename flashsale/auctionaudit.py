"""The auction part of a sale's audit: bids above the increment, one winner, its order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import Redis

from flashsale.lot import LotKeys
from flashsale.order import OrderView
from flashsale.redisguard import text

if TYPE_CHECKING:
    from flashsale.audit import AuditReport


async def audit_auction(
    redis: Redis, prefix: str, sale_id: int, orders: dict[str, OrderView], report: AuditReport
) -> None:
    """Add the auction checks of one lot (a sale with a lot) to ``report``; others are skipped."""
    k = LotKeys.of(prefix, sale_id)
    raw = await redis.hgetall(k.lot)
    if not raw:
        return
    lot = {text(f): text(v) for f, v in raw.items()}
    bids = [text(b).split("|", 3) for b in await redis.lrange(k.bids, 0, -1)]
    least, low = int(lot["start"]), []
    for user, amount, _at, _name in bids:
        if int(amount) < least:
            low.append(f"bid {amount} by {user} below {least}")
        least = int(amount) + int(lot["inc"])
    report.checks["auction_bids_above_increment"] = not low
    report.problems += low[:20]
    live = [o for o in orders.values() if o.state in ("reserved", "paid")]
    state, ok = lot["state"], True
    if state in ("scheduled", "open"):
        ok = not orders
    elif state == "unsold":
        ok = not orders and (not bids or int(bids[-1][1]) < int(lot["reserve"]))
    elif state == "won":
        order = orders.get(lot.get("order", ""))
        ok = len(live) <= 1 and order is not None and order.user_id == lot["winner"]
        ok = ok and order is not None and order.unit_price_cents == int(lot["price"])
        if len(orders) == 1:  # not offered to a runner-up: the winner is the highest bid
            ok = ok and bool(bids) and bids[-1][0] == lot["winner"]
            ok = ok and int(bids[-1][1]) == int(lot["price"]) >= int(lot["reserve"])
    report.checks["auction_one_winner_with_order"] = ok
    if not ok:
        report.problems.append(f"lot {sale_id} ({state}) winner or orders inconsistent")
    report.figures.update(auction_state=state, auction_bids=len(bids))
