"""The room's periodic work: stock, lag checks, reactions, viewer counts, idle-room retention."""

from __future__ import annotations

import asyncio
import logging
import time

from chat.audience import Audience
from chat.member import RoomLimits
from chat.presence import Presence
from chat.reactions import Reactions
from chat.salefeed import SaleAnnouncer

log = logging.getLogger("livesell.chat")


class RoomTicker:
    """One loop, every ``stock_interval_s``, doing each job at its own interval.

    A failed step is logged and the loop goes on: one Redis hiccup must not stop the counts.
    """

    def __init__(
        self,
        audience: Audience,
        announcer: SaleAnnouncer,
        reactions: Reactions,
        presence: Presence,
        limits: RoomLimits,
    ) -> None:
        self._audience = audience
        self._announcer = announcer
        self._reactions = reactions
        self._presence = presence
        self._limits = limits

    async def run(self) -> None:
        """Tick until cancelled."""
        lim = self._limits
        last_reactions = last_viewers = time.monotonic()
        while True:
            await asyncio.sleep(lim.stock_interval_s)
            now = time.monotonic()
            try:
                await self._announcer.flush_stock()
                self._audience.check_lagging(now)
                if now - last_reactions >= lim.reactions_interval_s:
                    last_reactions = now
                    await self.flush_reactions()
                if now - last_viewers >= lim.viewers_interval_s:
                    last_viewers = now
                    await self.report_presence(now)
            except Exception:
                log.exception("room ticker step failed")

    async def flush_reactions(self) -> int:
        """Publish the reactions counted since the last flush; returns the rooms flushed."""
        return await self._reactions.flush({r.stream_id: r.keys for r in self._audience.rooms()})

    async def report_presence(self, now: float) -> None:
        """Report each room's local viewers; withdraw and drop rooms idle for ``idle_room_s``."""
        for room in self._audience.rooms():
            if not room.ready.is_set() or room.failed is not None:
                continue
            idle = room.size() == 0 and now - room.empty_since > self._limits.idle_room_s
            await self._presence.report(room.keys, room.viewers(), withdraw=idle)
            if idle:
                await self._audience.drop_if_idle(room)
