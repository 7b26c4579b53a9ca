"""A user's traces in the rooms' Redis state: chat history, the event streams, moderation lists.

Export lists the user's chat messages still in the rooms' histories; forgetting removes every
history entry and stream event naming the user, and drops them from moderation sets and their
rate-limit buckets. Replays resume across the gaps by sending a fresh snapshot.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from chat.keys import RoomKeys
from chat.protocol import decode
from inventory.userdata import names_user


def _decoded(raw: bytes) -> dict[str, Any]:
    try:
        event = decode(raw)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


class RoomForgetter:
    """Finds and removes one user's traces in every room Redis holds."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def rooms(self) -> list[RoomKeys]:
        """Keys of every room with a sequence counter (every room that ever had an event)."""
        start = len(self._prefix) + 3  # past '<prefix>:{r'
        pattern = f"{self._prefix}:{{r*}}:seq"
        ids = {k.decode()[start:].rsplit("}", 1)[0] async for k in self._redis.scan_iter(pattern)}
        return [RoomKeys.of(self._prefix, sid) for sid in sorted(ids)]

    async def chat_of(self, user_id: str) -> list[dict[str, Any]]:
        """The user's chat messages still in the rooms' histories (their data export)."""
        out = []
        for keys in await self.rooms():
            for raw in await self._redis.lrange(keys.history, 0, -1):
                event = _decoded(raw)
                if event.get("type") == "chat" and event.get("user_id") == user_id:
                    out.append({"stream_id": keys.base.rsplit("{r", 1)[1][:-1], **event})
        return out

    async def forget(self, user_id: str, name: str) -> int:
        """Remove every entry naming the user; returns how many went."""
        gone = 0
        for keys in await self.rooms():
            for raw in await self._redis.lrange(keys.history, 0, -1):
                if names_user(_decoded(raw), user_id, name):
                    gone += int(await self._redis.lrem(keys.history, 0, raw))
            doomed = [entry_id for entry_id, fields in await self._redis.xrange(keys.events)
                      if names_user(_decoded(fields.get(b"e", b"")), user_id, name)]  # fmt: skip
            if doomed:
                gone += int(await self._redis.xdel(keys.events, *doomed))
            async with self._redis.pipeline(transaction=False) as p:
                for key in (keys.mods, keys.bans, keys.admins):
                    p.srem(key, user_id)
                p.hdel(keys.mutes, user_id)
                p.delete(keys.bucket(user_id))
                gone += sum(int(n) for n in await p.execute())
        return gone
