"""Sweeps due payment holds of every active sale, returning their stock exactly once."""

from __future__ import annotations

from flashsale.service import SaleService
from flashsale.sweeper import Sweeper


class Reaper(Sweeper):
    """A background sweeper; safe to run in every process (expire.lua is atomic)."""

    name = "reaper"

    def __init__(self, sales: SaleService, interval_s: float = 0.5) -> None:
        super().__init__(interval_s)
        self._sales = sales

    async def sweep(self) -> int:
        """Expire every due hold once; returns how many orders expired."""
        total = 0
        for sale_id in await self._sales.active_sale_ids():
            while True:
                n = await self._sales.expire_due(sale_id)
                total += n
                if n < 500:
                    break
            await self._sales.retire_if_done(sale_id)
        return total
