"""A sale's retirement: once nothing can change it, the workers stop watching it.

A sale that has ended, holds no reservations and is fully persisted can no longer change (buys
are refused, and only reserved orders can be paid, cancelled or expired). It leaves the active
set the workers poll, SQL records it as closed, and its Redis keys are kept for a while (audits,
order look-ups) before they expire and SQL alone is the record.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from flashsale.keys import SaleKeys, active_sales_key
from flashsale.redisguard import guarded
from flashsale.redisguard import text as _s
from inventory.ledger import Ledger

log = logging.getLogger("livesell.flashsale")

#: A sale ended by its clock is retired only this long after its end (clock skew margin).
RETIRE_GRACE_MS = 5_000
#: How long a retired sale's Redis state is kept before SQL alone holds it.
RETAIN_RETIRED_MS = 7 * 86_400_000


class Retirement:
    """Retires sales that are done: out of the active set, closed in SQL, keys set to expire."""

    def __init__(self, redis: Redis, ledger: Ledger, prefix: str) -> None:
        self._redis = redis
        self._ledger = ledger
        self._prefix = prefix

    async def retire_if_done(self, sale_id: int, group: str = "persister") -> bool:
        """Stop watching a sale once it has ended, holds no reservations and is fully persisted.

        Nothing can change such a sale any more (buys are refused, and only reserved orders can
        be paid, cancelled or expired), so the workers need not poll it again.
        """
        k = SaleKeys.of(self._prefix, sale_id)
        m = await guarded(self._redis.hmget(k.meta, ["state", "end_ms", "ann"]))
        if m[0] is None:
            return False
        if m[2] is not None and _s(m[2]) != "closed":
            return False  # the rooms have not heard it end yet (chat.saleannouncer tells them)
        # Redis's clock decides when a sale ends, so judge by it too, with a grace margin.
        sec, usec = await guarded(self._redis.time())
        if _s(m[0]) != "closed" and sec * 1000 + usec // 1000 < int(m[1]) + RETIRE_GRACE_MS:
            return False
        if await guarded(self._redis.zcard(k.holds)):
            return False
        if await guarded(self._redis.exists(k.events)):
            groups = await guarded(self._redis.xinfo_groups(k.events))
            mine = [g for g in groups if _s(g["name"]) == group]
            if not mine or mine[0]["pending"] or mine[0].get("lag") not in (0, None):
                return False
            if mine[0].get("lag") is None:
                last = await guarded(self._redis.xinfo_stream(k.events))
                if _s(last["last-generated-id"]) != _s(mine[0]["last-delivered-id"]):
                    return False
        await guarded(self._redis.srem(active_sales_key(self._prefix), sale_id))
        # So that joins stop reading it (and its units from the orders, once Redis forgot it).
        await self._ledger.mark_closed(sale_id)
        # Its Redis state stays for a while (audits, order look-ups), then SQL is the record.
        pipe = self._redis.pipeline(transaction=False)
        for key in (k.meta, k.users, k.idem, k.orders, k.holds, k.events, k.phases):
            pipe.pexpire(key, RETAIN_RETIRED_MS)
        await guarded(pipe.execute())
        log.info("sale %d retired from the active set", sale_id)
        return True
