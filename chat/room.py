"""Room state in Redis, shared by every process: pin, announcement, slow mode, words, roles."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgpack
from redis.asyncio import Redis

from chat.keys import RoomKeys
from chat.protocol import decode, encode

#: How long a room's keys are kept after its stream ended.
ROOM_RETAIN_MS = 7 * 86_400_000


def now_ms() -> int:
    """Wall-clock milliseconds (shared by every process; Redis TIME decides where it matters)."""
    return int(time.time() * 1000)


@dataclass(slots=True)
class RoomSnapshot:
    """What a room holds in Redis at one sequence number."""

    seq: int
    messages: list[dict[str, Any]]
    pinned: dict[str, Any] | None
    announcement: dict[str, Any] | None
    slow_mode_s: int
    viewers: int
    reactions: dict[str, int]
    muted_until: int = 0
    moderator: bool = False
    banned: bool = False
    #: The last status announced in the room (None: only the catalogue knows).
    stream_status: str | None = None
    #: Redis's clock at the read (ms): what a client's countdowns count from.
    server_time_ms: int = 0
    #: Bumped when a sale's first event is published in the room (chat/lua/sale_events.lua).
    sales_version: int = 0


def _unpack(raw: bytes | None) -> Any:
    return None if raw is None else decode(raw)


class RoomState:
    """Reads and writes the shared state of rooms."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def snapshot(self, keys: RoomKeys) -> RoomSnapshot:
        """One atomic read (MULTI) of the room: its seq matches its history exactly.

        The same for every viewer (joiners share it); a user's own standing is ``standing``.
        """
        async with self._redis.pipeline(transaction=True) as p:
            p.get(keys.seq)
            p.lrange(keys.history, 0, -1)
            p.hgetall(keys.state)
            p.hgetall(keys.reactions)
            p.time()
            seq, history, state, reactions, (sec, usec) = await p.execute()
        return RoomSnapshot(
            seq=int(seq or 0),
            # LPUSH keeps the newest first; clients want them oldest first.
            messages=[decode(m) for m in reversed(history)],
            pinned=_unpack(state.get(b"pinned")),
            announcement=_unpack(state.get(b"announcement")),
            slow_mode_s=int(state.get(b"slow_mode_s", 0)),
            viewers=int(state.get(b"viewers", 0)),
            reactions={k.decode(): int(v) for k, v in reactions.items()},
            stream_status=state[b"stream_status"].decode() if b"stream_status" in state else None,
            server_time_ms=int(sec) * 1000 + int(usec) // 1000,
            sales_version=int(state.get(b"sales_v", 0)),
        )

    async def standing(self, keys: RoomKeys, user_id: str) -> RoomSnapshot:
        """Only the user's own standing (muted until, moderator, banned) in a RoomSnapshot."""
        async with self._redis.pipeline(transaction=True) as p:
            p.hget(keys.mutes, user_id)
            p.sismember(keys.mods, user_id)
            p.sismember(keys.bans, user_id)
            muted, moderator, banned = await p.execute()
        muted = int(muted or 0)
        return RoomSnapshot(
            seq=0, messages=[], pinned=None, announcement=None, slow_mode_s=0, viewers=0,
            reactions={}, muted_until=muted if muted > now_ms() else 0,
            moderator=bool(moderator), banned=bool(banned),
        )  # fmt: skip

    async def set_stream_status(self, keys: RoomKeys, status: str) -> None:
        """Record the stream's status for snapshots (the event announces it)."""
        await self._redis.hset(keys.state, mapping={"stream_status": status})

    async def retain(self, keys: RoomKeys, ended: bool) -> None:
        """Expire the keys ``ROOM_RETAIN_MS`` after the stream ended; persist them while live."""
        # After the show the room is kept for a while (late chat, moderation review), then its
        # keys expire; going live again keeps them.
        pipe = self._redis.pipeline(transaction=False)
        for key in keys.durable():
            if ended:
                pipe.pexpire(key, ROOM_RETAIN_MS)
            else:
                pipe.persist(key)
        await pipe.execute()

    async def set_pinned(self, keys: RoomKeys, product: dict[str, Any] | None) -> None:
        """Pin a product card (None unpins)."""
        if product is None:
            await self._redis.hdel(keys.state, "pinned")
        else:
            await self._redis.hset(keys.state, mapping={"pinned": encode(product)})

    async def set_announcement(self, keys: RoomKeys, announcement: dict[str, Any] | None) -> None:
        """Set the pinned announcement (None clears it)."""
        if announcement is None:
            await self._redis.hdel(keys.state, "announcement")
        else:
            await self._redis.hset(keys.state, mapping={"announcement": encode(announcement)})

    async def set_slow_mode(self, keys: RoomKeys, seconds: int) -> None:
        """Viewers may post once per ``seconds`` (0 turns slow mode off).

        Only posts after it was switched on count (``slow_since_us``, Redis's clock like the
        chat check): a message sent just before does not silence its author. Changing the
        interval while it is on keeps that moment, so it does not free everyone at once.
        """
        async with self._redis.pipeline(transaction=True) as p:
            p.hget(keys.state, "slow_mode_s")
            p.time()
            was, (sec, usec) = await p.execute()
        fields: dict[str, int] = {"slow_mode_s": seconds}
        if not int(was or 0):
            fields["slow_since_us"] = int(sec) * 1_000_000 + int(usec)
        await self._redis.hset(keys.state, mapping=fields)

    async def set_banned_words(self, keys: RoomKeys, words: list[str]) -> None:
        """Replace the room's banned-word list."""
        await self._redis.hset(keys.state, mapping={"banned_words": encode(words)})

    async def banned_words(self, keys: RoomKeys) -> list[str]:
        """The room's banned-word list."""
        raw = await self._redis.hget(keys.state, "banned_words")
        return [] if raw is None else list(msgpack.unpackb(raw, raw=False))

    async def is_moderator(self, keys: RoomKeys, user_id: str) -> bool:
        """Whether the host promoted ``user_id`` in this room."""
        return bool(await self._redis.sismember(keys.mods, user_id))

    async def set_moderator(self, keys: RoomKeys, user_id: str, on: bool) -> None:
        """Promote or demote a moderator."""
        if on:
            await self._redis.sadd(keys.mods, user_id)
        else:
            await self._redis.srem(keys.mods, user_id)

    async def admit(self, keys: RoomKeys, user_id: str, admin: bool) -> bool:
        """Whether a user joining (or signing in) is refused as banned; records admins.

        Admins act as host, whom nobody moderates: never refused, and remembered so that a
        moderator's ``ban``/``mute`` by user id can be refused in every process.
        """
        if admin:
            await self._redis.sadd(keys.admins, user_id)
            return False
        return await self.is_banned(keys, user_id)

    async def is_admin(self, keys: RoomKeys, user_id: str) -> bool:
        """Whether ``user_id`` came to this room with an admin token."""
        return bool(await self._redis.sismember(keys.admins, user_id))

    async def is_banned(self, keys: RoomKeys, user_id: str) -> bool:
        """Whether ``user_id`` is banned from the room."""
        return bool(await self._redis.sismember(keys.bans, user_id))

    async def set_banned(self, keys: RoomKeys, user_id: str, on: bool) -> None:
        """Ban or unban a user; a ban also takes away moderator rights."""
        if on:
            pipe = self._redis.pipeline(transaction=True)
            pipe.sadd(keys.bans, user_id)
            pipe.srem(keys.mods, user_id)
            await pipe.execute()
        else:
            await self._redis.srem(keys.bans, user_id)

    async def set_muted_until(self, keys: RoomKeys, user_id: str, until_ms: int) -> None:
        """Mute until ``until_ms`` (0 unmutes)."""
        if until_ms:
            await self._redis.hset(keys.mutes, mapping={user_id: until_ms})
        else:
            await self._redis.hdel(keys.mutes, user_id)
