"""Work the sales have left: events not yet in SQL, reservations waiting for payment or expiry."""

from __future__ import annotations

import time
from collections.abc import Container
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from flashsale.keys import SaleKeys, active_sales_key
from flashsale.persister import GROUP


@dataclass(frozen=True, slots=True)
class Backlog:
    """The persister's backlog over the active sales, their orders and their unpaid holds."""

    active_sales: int
    #: Events not yet delivered to the persister group plus those delivered but not acked.
    unpersisted_events: int
    #: Orders ever created by the active sales (each sale counts its own order ids).
    orders_created: int
    #: Reservations holding stock until they are paid or expire.
    holds: int = 0
    #: Of those, holds already past their expiry that the reaper has not swept yet.
    holds_due: int = 0


async def active_sale_ids(redis: Redis, prefix: str) -> list[int]:
    """The sales whose events the persister still follows."""
    return sorted(int(m) for m in await redis.smembers(active_sales_key(prefix)))


async def backlog(redis: Redis, prefix: str, uncounted: Container[int] = ()) -> Backlog:
    """Measure the persister's backlog across every active sale (two round trips per sale).

    Orders of the ``uncounted`` sales (rehearsals') are left out of ``orders_created``; their
    events still count as backlog, which is the persister's work either way.
    """
    ids = await active_sale_ids(redis, prefix)
    unpersisted = orders = holds = due = 0
    for sale_id in ids:
        keys = SaleKeys.of(prefix, sale_id)
        pipe = redis.pipeline(transaction=False)
        pipe.hget(keys.meta, "seq")
        pipe.zcard(keys.holds)
        pipe.zcount(keys.holds, "-inf", int(time.time() * 1000))  # scores: expiry in ms
        seq, n_holds, n_due = await pipe.execute()
        orders += 0 if sale_id in uncounted else int(seq or 0)
        holds += int(n_holds)
        due += int(n_due)
        try:
            groups = await redis.xinfo_groups(keys.events)
        except ResponseError:  # no stream yet: the sale has had no events
            continue
        group = next((g for g in groups if _s(g["name"]) == GROUP), None)
        if group is None:
            unpersisted += int(await redis.xlen(keys.events))
            continue
        lag = group.get("lag")
        if lag is None:  # Redis cannot tell (entries deleted); count what is still pending
            lag = 0
        unpersisted += int(lag) + int(group["pending"])
    return Backlog(len(ids), unpersisted, orders, holds, due)


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
