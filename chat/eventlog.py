"""Copies each followed room's replay-worthy events from its Redis stream into SQL.

The room's Redis stream keeps only its last 1,000 events, so a replay's timeline (pins, sales,
chat) comes from ``inventory.roomevents.RoomEventLog``. One pass a second reads each followed
room's stream after the last archived ``seq``; a room emitting more than 1,000 events between
two passes loses the oldest from its archive (counted in ``missed``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from redis.asyncio import Redis

from chat.keys import RoomKeys
from chat.protocol import decode
from inventory.roomevents import LoggedEvent, RoomEventLog

log = logging.getLogger("livesell.chat")

#: What a replay shows; moderation, slow mode and the like stay out of the archive.
ARCHIVED = frozenset({"chat", "deleted", "pinned", "unpinned", "announcement", "sale", "stream"})
#: A room is still followed this long after it stops being live (sales close, last words).
LINGER_S = 120.0


class RoomArchiver:
    """Follows rooms (those ``rooms()`` names, then ``LINGER_S`` more) and archives them."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        store: RoomEventLog,
        rooms: Callable[[], Iterable[str]],
        interval_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._store = store
        self._rooms = rooms
        self._interval = interval_s
        self._following: dict[str, float] = {}
        self._last: dict[str, int] = {}
        #: Events the archive missed because the room's stream had moved past them.
        self.missed = 0

    async def run(self) -> None:
        """Archive every second until cancelled (run it supervised)."""
        while True:
            await self.sweep()
            await asyncio.sleep(self._interval)

    async def sweep(self) -> None:
        """One pass over the followed rooms; a failure is logged, never raised."""
        try:
            await self.archive_once()
        except Exception:
            log.exception("room archive pass failed")

    async def archive_once(self) -> None:
        """One pass over the followed rooms."""
        now = time.monotonic()
        for stream_id in self._rooms():
            self._following[stream_id] = now
        for stream_id, seen in list(self._following.items()):
            await self.archive_room(stream_id)
            if now - seen > LINGER_S:
                del self._following[stream_id]
                self._last.pop(stream_id, None)

    async def archive_room(self, stream_id: str) -> int:
        """Archive the room's new events; return how many were stored."""
        last = self._last.get(stream_id)
        if last is None:
            last = await self._store.last_seq(stream_id)
        keys = RoomKeys.of(self._prefix, stream_id)
        entries = await self._redis.xrange(keys.events, min=f"{last + 1}-0", max="+")
        events: list[LoggedEvent] = []
        now_ms = int(time.time() * 1000)
        seq = last
        for entry_id, fields in entries:
            seq = int(entry_id.split(b"-")[0])
            event = decode(fields[b"e"])
            if not isinstance(event, dict) or event.get("type") not in ARCHIVED:
                continue
            at_ms = event.get("at_ms")
            events.append(
                LoggedEvent(seq, event["type"], at_ms if isinstance(at_ms, int) else now_ms, event)
            )
        if entries:
            first = int(entries[0][0].split(b"-")[0])
            if last and first > last + 1:
                self.missed += first - last - 1
        await self._store.append(stream_id, events)
        self._last[stream_id] = seq
        return len(events)
