"""The room's ordered log: per-room sequence numbers, a Redis Stream for replay, chat history.

Every sequenced event goes through one Lua call (``chat/lua``) that INCRs the room's sequence,
appends the event to the room's stream, and PUBLISHes it. Redis runs scripts one at a time, so
publish order is sequence order in every process, and a reader that registers before reading
the stream cannot miss an event between the two.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from chat.errors import Banned, MessageNotFound, Muted, RateLimited, SlowMode
from chat.keys import RoomKeys
from chat.protocol import decode, encode, open_payload
from inventory.luascript import load_script
from inventory.redisclient import publish_command


class RoomLog:
    """Appends sequenced events to a room and reads them back for snapshots and replay."""

    def __init__(self, redis: Redis, max_events: int = 1000, history_len: int = 50) -> None:
        self._redis = redis
        self.max_events = max_events
        self.history_len = history_len
        self._pub = publish_command(redis)
        # Each script starts with the shared sequenced publish (chat/lua/publish_fn.lua).
        self._publish = load_script(redis, "chat", "publish_fn", "publish")
        self._chat = load_script(redis, "chat", "publish_fn", "chat")
        self._delete = load_script(redis, "chat", "publish_fn", "delete")
        self._sale_events = load_script(redis, "chat", "publish_fn", "sale_events")
        self._once = load_script(redis, "chat", "publish_fn", "once")

    async def publish(self, keys: RoomKeys, event: dict[str, Any]) -> int:
        """Give ``event`` the room's next sequence number, log it and broadcast it."""
        payload = open_payload(event, 1)
        args: list[Any] = [keys.channel, self.max_events, payload]
        return int(await self._publish(keys=keys.log(), args=args))

    async def publish_once(
        self, keys: RoomKeys, sale_id: int, numbered: list[tuple[int, dict[str, Any]]]
    ) -> int:
        """Publish a sale's numbered events that the room has not had yet, in order.

        Any process may offer the same numbers; each is published once. Returns the last
        number the room has published for the sale.
        """
        args: list[Any] = [keys.channel, self.max_events, sale_id]
        for number, event in numbered:
            args += [number, open_payload(event, 1)]
        return int(await self._sale_events(keys=[*keys.log(), keys.state], args=args))

    async def publish_each_once(
        self, keys: RoomKeys, items: list[tuple[str, dict[str, Any]]]
    ) -> int:
        """Publish each (id, event) whose id the room has not published yet; returns how many."""
        args: list[Any] = [keys.channel, self.max_events]
        for once_id, event in items:
            args += [once_id, open_payload(event, 1)]
        return int(await self._once(keys=[*keys.log(), keys.once], args=args))

    async def broadcast(self, keys: RoomKeys, event: dict[str, Any]) -> None:
        """Broadcast an unsequenced (ephemeral) event: counts that the next one supersedes."""
        await self._redis.execute_command(self._pub, keys.channel, encode(event))

    async def broadcast_many(self, events: list[tuple[RoomKeys, dict[str, Any]]]) -> None:
        """Broadcast several unsequenced events in one round trip."""
        if not events:
            return
        async with self._redis.pipeline(transaction=False) as p:
            for keys, event in events:
                p.execute_command(self._pub, keys.channel, encode(event))
            await p.execute()

    async def post_chat(
        self,
        keys: RoomKeys,
        event: dict[str, Any],
        user_id: str,
        base_role: str,
        capacity: float,
        refill_per_s: float,
    ) -> int:
        """Check ban, mute, slow mode and the token bucket, then publish; returns the seq."""
        payload = open_payload(event, 2)
        reply = await self._chat(
            keys=[*keys.log(), keys.bans, keys.mutes, keys.mods, keys.state, keys.bucket(user_id)],
            args=[  # type: ignore[arg-type]
                keys.channel, self.max_events, payload, user_id, base_role, capacity,
                refill_per_s, self.history_len,
            ],
        )  # fmt: skip
        code, value = reply[0].decode(), int(reply[1])
        if code == "ok":
            return value
        if code == "banned":
            raise Banned("you are banned from this room")
        if code == "muted":
            raise Muted(value)
        if code == "slow_mode":
            raise SlowMode(value, f"slow mode is on; wait {value} ms")
        raise RateLimited(value)

    async def delete(self, keys: RoomKeys, event: dict[str, Any], target_seq: int) -> int:
        """Remove chat message ``target_seq`` from the history and broadcast the deletion."""
        args: list[Any] = [keys.channel, self.max_events, open_payload(event, 1), target_seq]
        reply = await self._delete(keys=keys.log(), args=args)
        if reply[0] != b"ok":
            raise MessageNotFound(f"no recent chat message with seq {target_seq}")
        return int(reply[1])

    async def event(self, keys: RoomKeys, seq: int) -> dict[str, Any] | None:
        """The sequenced event ``seq`` if the room still holds it."""
        found = await self._redis.xrange(keys.events, min=f"{seq}-0", max=f"{seq}-0")
        return decode(found[0][1][b"e"]) if found else None

    async def replay(self, keys: RoomKeys, since: int) -> tuple[int, list[bytes], int] | None:
        """Events after ``since`` as (current seq, encoded events, Redis time in ms), or None.

        None means the client missed more than the stream keeps (or the room was reset), so
        it needs a fresh snapshot instead. The time lets a client correct countdowns whose
        events (and their ``server_time_ms``) are as old as the time it was away.
        """
        async with self._redis.pipeline(transaction=True) as p:
            p.get(keys.seq)
            p.xrange(keys.events, min=f"{since + 1}-0", max="+", count=self.max_events + 1)
            p.time()
            current_raw, entries, (sec, usec) = await p.execute()
        current = int(current_raw or 0)
        if since > current:
            return None
        events = [fields[b"e"] for _id, fields in entries]
        if len(events) != current - since:
            return None
        return current, events, int(sec) * 1000 + int(usec) // 1000
