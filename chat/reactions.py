"""Reactions and likes: counted per room in each process, flushed as one aggregated event."""

from __future__ import annotations

from collections import Counter

from redis.asyncio import Redis

from chat.keys import RoomKeys
from chat.protocol import encode
from inventory.redisclient import publish_command


class Reactions:
    """Adds up taps locally; each flush adds them to the room totals and broadcasts one event.

    A viewer tapping "like" 30 times costs 30 dict increments, not 30 frames to every socket.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pub = publish_command(redis)
        self._pending: dict[str, Counter[str]] = {}

    def add(self, stream_id: str, kind: str, count: int) -> None:
        """Count ``count`` taps of ``kind`` in the room."""
        self._pending.setdefault(stream_id, Counter())[kind] += count

    async def flush(self, keys_of: dict[str, RoomKeys]) -> int:
        """Publish one ``reactions`` event per room that had taps; returns the rooms flushed."""
        pending, self._pending = self._pending, {}
        rooms = [(sid, c) for sid, c in pending.items() if sid in keys_of and c]
        if not rooms:
            return 0
        async with self._redis.pipeline(transaction=False) as p:
            for sid, counts in rooms:
                for kind, n in counts.items():
                    p.hincrby(keys_of[sid].reactions, kind, n)
                p.hgetall(keys_of[sid].reactions)
            replies = iter(await p.execute())
            for sid, counts in rooms:
                for _ in counts:
                    next(replies)
                totals = {k.decode(): int(v) for k, v in next(replies).items()}
                event = {"type": "reactions", "delta": dict(counts), "totals": totals}
                p.execute_command(self._pub, keys_of[sid].channel, encode(event))
            await p.execute()
        return len(rooms)
