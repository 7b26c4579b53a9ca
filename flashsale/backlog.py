"""Work the sales have left: events not yet in SQL, reservations waiting for payment or expiry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from flashsale.keys import SaleKeys, active_sales_key
from flashsale.persister import GROUP


@dataclass(frozen=True, slots=True)
class Backlog:
    """Totals over every active sale."""

    active_sales: int
    #: Order events in the sales' streams that the persister group has not acked yet.
    unpersisted: int
    #: Reservations holding stock until they are paid or expire.
    holds: int
    #: Of those, holds already past their expiry that the reaper has not swept yet.
    holds_due: int


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def sale_backlog(redis: Redis, prefix: str, group: str = GROUP) -> Backlog:
    """Read the backlog of every active sale in two round trips."""
    ids = sorted(int(m) for m in await redis.smembers(active_sales_key(prefix)))
    if not ids:
        return Backlog(0, 0, 0, 0)
    now_ms = int(time.time() * 1000)
    pipe = redis.pipeline(transaction=False)
    for sale_id in ids:
        k = SaleKeys.of(prefix, sale_id)
        pipe.zcard(k.holds)
        pipe.zcount(k.holds, "-inf", now_ms)
        pipe.xlen(k.events)
        pipe.xinfo_groups(k.events)
    # A sale whose stream does not exist yet answers an error for XINFO: nothing pending there.
    replies = await pipe.execute(raise_on_error=False)
    holds = due = unpersisted = 0
    for i in range(len(ids)):
        n_holds, n_due, length, groups = replies[4 * i : 4 * i + 4]
        holds += n_holds if isinstance(n_holds, int) else 0
        due += n_due if isinstance(n_due, int) else 0
        if isinstance(groups, Exception):
            continue
        mine = [g for g in groups if _s(g["name"]) == group]
        if not mine:
            # No consumer has read this stream yet: every event in it is waiting.
            unpersisted += length if isinstance(length, int) else 0
            continue
        # pending: delivered, not acked; lag: not delivered yet (Redis >= 7; None if unknown).
        lag = mine[0].get("lag")
        unpersisted += int(mine[0]["pending"]) + (int(lag) if lag is not None else 0)
    return Backlog(len(ids), unpersisted, holds, due)
