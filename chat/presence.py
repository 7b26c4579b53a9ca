"""Viewer counts across processes: each reports its sockets, one publishes the sum."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from chat.keys import RoomKeys
from chat.protocol import encode, open_payload
from inventory.luascript import load_script

_VIEWERS_HEAD = open_payload({"type": "viewers"}, 1) + encode("count")


class Presence:
    """Reports this process's viewer count per room; a gate lets one process publish per tick.

    A process that dies stops refreshing its entry; the others drop it once it is stale, so the
    count heals within a few ticks.
    """

    def __init__(self, redis: Redis, process_id: str, interval_s: float = 2.0) -> None:
        self._process_id = process_id
        self._interval_ms = int(interval_s * 1000)
        self._script = load_script(redis, "chat", "presence")

    async def report(self, keys: RoomKeys, local_count: int, withdraw: bool = False) -> int:
        """Record this process's count; returns the room total when this process published it."""
        args: list[Any] = [
            self._process_id, local_count, self._interval_ms * 3,
            max(self._interval_ms - 100, 100), keys.channel, _VIEWERS_HEAD,
            "1" if withdraw else "0",
        ]  # fmt: skip
        keys_ = [keys.viewers, keys.viewers_gate, keys.state]
        return int(await self._script(keys=keys_, args=args))
