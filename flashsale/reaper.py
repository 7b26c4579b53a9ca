"""Sweeps due payment holds of every active sale, returning their stock exactly once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from flashsale.service import SaleService
from inventory.errors import Unavailable
from inventory.tasks import cancel_all, supervise

log = logging.getLogger("livesell.reaper")


class Reaper:
    """A background sweeper; safe to run in every process (expire.lua is atomic)."""

    def __init__(self, sales: SaleService, interval_s: float = 0.5) -> None:
        self._sales = sales
        self._interval_s = interval_s
        self._tasks: list[asyncio.Task[Any]] = []

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

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Unavailable:
                log.warning("reaper: Redis unavailable; retrying")
            except Exception:
                log.exception("reaper sweep failed")
            await asyncio.sleep(self._interval_s)

    def start(self) -> None:
        """Start sweeping in the background."""
        self._tasks.append(supervise(self._loop(), "reaper"))

    async def close(self) -> None:
        """Stop sweeping."""
        await cancel_all(self._tasks)
