"""Sweeps unfilled groups past their deadline, releasing their units exactly once."""

from __future__ import annotations

from flashsale.groupbuy import GroupBuys
from flashsale.sweeper import Sweeper


class GroupReaper(Sweeper):
    """A background sweeper; safe to run in every process (group_expire.lua is atomic)."""

    name = "group-reaper"

    def __init__(self, groups: GroupBuys, interval_s: float = 0.5) -> None:
        super().__init__(interval_s)
        self._groups = groups

    async def sweep(self) -> int:
        """Expire every due group once; returns how many groups expired."""
        total = 0
        for sale_id in await self._groups.active_sale_ids():
            while True:
                n = await self._groups.expire_due(sale_id)
                total += n
                if n < 200:
                    break
            await self._groups.retire_if_done(sale_id)
        return total
