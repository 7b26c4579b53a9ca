"""Tells each room when its sales change phase: once per transition across every process.

flashsale/lua/phase.lua decides by Redis's clock whether a sale moved on (scheduled, countdown,
opened, sold_out, restocked, closed) and numbers each transition once. Every process looks:
right after a local open, close, buy that sold out, cancel or expiry (a poke), when the clock
alone moves a sale on (a countdown ends, a window runs out), and in a sweep of every active
sale. chat/lua/sale_events.lua then publishes the transitions a room has not had yet, so if
the process that saw a change dies before telling the room, the next one to look does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.protocol import open_payload
from inventory.errors import NotFound

if TYPE_CHECKING:
    from flashsale.phases import Transition
    from flashsale.service import SaleService
    from flashsale.view import SaleView

log = logging.getLogger("livesell.chat")

#: A sale whose phase the clock changes is looked at this soon after the change is due.
CLOCK_SLACK_S = 0.005


def sale_event(view: SaleView, t: Transition) -> dict[str, Any]:
    """The room's ``sale`` event for one transition: the sale as it was at that moment."""
    at = dataclasses.replace(
        view,
        state=t.state,
        starts_at_ms=t.starts_at_ms,
        ends_at_ms=t.ends_at_ms,
        remaining=t.remaining,
    )
    return {"type": "sale", "phase": t.phase, "sale": at.to_json(t.at_ms), "at_ms": t.at_ms}


class SaleAnnouncer:
    """Looks at sales when poked, when their clock says so, and every ``sweep_s``."""

    def __init__(
        self,
        redis: Redis,
        room_log: RoomLog,
        keys_of: Callable[[str], RoomKeys],
        sweep_s: float = 1.0,
    ) -> None:
        source = resources.files("chat").joinpath("lua/sale_events.lua").read_text()
        self._script: Any = redis.register_script(source)
        self._log = room_log
        self._keys_of = keys_of
        self._sweep_s = sweep_s
        self.sales: SaleService | None = None
        #: Per sale: the last transition number its room is known to have published.
        self._known: dict[int, int] = {}
        #: Per sale: the fields that never change (product, price, quantity...), read once.
        self._views: dict[int, SaleView] = {}
        #: Per sale: when (loop time) the clock alone moves it to its next phase.
        self._due: dict[int, float] = {}
        self._poked: set[int] = set()
        self._wake = asyncio.Event()

    def poke(self, sale_id: int) -> None:
        """Something happened to the sale here: look at it soon (never blocks)."""
        self._poked.add(sale_id)
        self._wake.set()

    async def run(self) -> None:
        """Look at poked, due and (every ``sweep_s``) all active sales, forever."""
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            now = loop.time()
            wake_at = min([next_sweep, *self._due.values()])
            if not self._poked and wake_at > now:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), wake_at - now)
                except TimeoutError:
                    pass
            now = loop.time()
            todo, self._poked = self._poked, set()
            todo |= {s for s, t in self._due.items() if t <= now}
            sweep = now >= next_sweep
            if sweep:
                next_sweep = now + self._sweep_s
            if sweep and self.sales is not None:
                try:
                    active = set(await self.sales.active_sale_ids())
                except Exception:
                    log.warning("sale announcer: cannot list active sales", exc_info=True)
                    active = set()
                for gone in set(self._known) - active - todo:
                    self._forget(gone)
                todo |= active
            for sale_id in sorted(todo):
                try:
                    await self.check(sale_id)
                except Exception:
                    log.warning("sale announcer: sale %d not checked", sale_id, exc_info=True)
                    self._due[sale_id] = loop.time() + self._sweep_s

    def _forget(self, sale_id: int) -> None:
        self._known.pop(sale_id, None)
        self._views.pop(sale_id, None)
        self._due.pop(sale_id, None)

    async def check(self, sale_id: int) -> None:
        """Record the sale's transition if it has one, and publish what its room lacks."""
        if self.sales is None:
            return
        report = await self.sales.phases.check(sale_id, self._known.get(sale_id, 0))
        if report is None:
            self._forget(sale_id)
            return
        self._due.pop(sale_id, None)
        if report.next_change_ms is not None:
            delay = report.next_change_ms / 1000 + CLOCK_SLACK_S
            self._due[sale_id] = asyncio.get_running_loop().time() + delay
        if report.stream_id is None or not report.transitions:
            self._known[sale_id] = report.number
            return
        view = self._views.get(sale_id)
        if view is None:
            try:
                view = self._views[sale_id] = await self.sales.get_sale(sale_id)
            except NotFound:
                self._known[sale_id] = report.number
                return
        keys = self._keys_of(report.stream_id)
        args: list[Any] = [keys.channel, self._log.max_events, sale_id]
        for t in report.transitions:
            args += [t.number, open_payload(sale_event(view, t), 1)]
        self._known[sale_id] = int(
            await self._script(keys=[keys.seq, keys.events, keys.state], args=args)
        )
