"""The room's ordered log: per-room sequence numbers, a Redis Stream for replay, chat history.

Every sequenced event goes through one Lua call that INCRs the room's sequence, appends the
event to the room's stream, and PUBLISHes it. Redis runs scripts one at a time, so publish
order is sequence order in every process, and a reader that registers before reading the
stream cannot miss an event between the two.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from chat.errors import Banned, MessageNotFound, Muted, RateLimited, SlowMode
from chat.keys import RoomKeys
from chat.protocol import encode, open_payload

# KEYS[1] seq, KEYS[2] events, KEYS[3] history; ARGV[1] channel, ARGV[2] stream max length.
_PUBLISH_FN = """
local function publish(ev_head)
  local seq = redis.call('INCR', KEYS[1])
  local ev = ev_head .. cmsgpack.pack('seq') .. cmsgpack.pack(seq)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', ev)
  redis.call('PUBLISH', ARGV[1], ev)
  return seq, ev
end
"""

# ARGV[3] the event, its map header counting the appended seq.
PUBLISH_LUA = (
    _PUBLISH_FN
    + """
local seq = publish(ARGV[3])
return seq
"""
)

# KEYS[4] bans, [5] mutes, [6] mods, [7] state, [8] the user's bucket.
# ARGV[3] event (header counts role and seq), [4] user, [5] base role (host|viewer),
# [6] bucket capacity, [7] refill per second, [8] history length.
CHAT_LUA = (
    _PUBLISH_FN
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user = ARGV[4]
if redis.call('SISMEMBER', KEYS[4], user) == 1 then return {'banned', 0} end
local muted = tonumber(redis.call('HGET', KEYS[5], user) or '0')
if muted > now then return {'muted', muted} end
local role = ARGV[5]
if role ~= 'host' and redis.call('SISMEMBER', KEYS[6], user) == 1 then role = 'moderator' end
if role ~= 'host' then
  local b = redis.call('HMGET', KEYS[8], 'tokens', 'ts', 'last')
  local cap = tonumber(ARGV[6])
  local tokens = tonumber(b[1] or cap)
  local ts = tonumber(b[2] or now)
  local last = tonumber(b[3] or 0)
  if role == 'viewer' then
    local slow = tonumber(redis.call('HGET', KEYS[7], 'slow_mode_s') or '0')
    if slow > 0 and now - last < slow * 1000 then return {'slow_mode', last + slow * 1000 - now} end
  end
  local rate = tonumber(ARGV[7])
  tokens = math.min(cap, tokens + (now - ts) * rate / 1000)
  if tokens < 1 then
    redis.call('HSET', KEYS[8], 'tokens', tostring(tokens), 'ts', now)
    return {'rate_limited', math.ceil((1 - tokens) * 1000 / rate)}
  end
  redis.call('HSET', KEYS[8], 'tokens', tostring(tokens - 1), 'ts', now, 'last', now)
  redis.call('PEXPIRE', KEYS[8], 3600000)
end
local seq, ev = publish(ARGV[3] .. cmsgpack.pack('role') .. cmsgpack.pack(role))
redis.call('LPUSH', KEYS[3], ev)
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1)
return {'ok', seq}
"""
)

# ARGV[3] the 'deleted' event (header counts seq), ARGV[4] the target chat message's seq.
DELETE_LUA = (
    _PUBLISH_FN
    + """
local target = ARGV[4]
local found = redis.call('XRANGE', KEYS[2], target .. '-0', target .. '-0')
if #found == 0 then return {'not_found', 0} end
local ev = cmsgpack.unpack(found[1][2][2])
if ev['type'] ~= 'chat' then return {'not_found', 0} end
for _, item in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
  if cmsgpack.unpack(item)['seq'] == tonumber(target) then
    redis.call('LREM', KEYS[3], 1, item)
    break
  end
end
local seq = publish(ARGV[3])
return {'ok', seq}
"""
)


class RoomLog:
    """Appends sequenced events to a room and reads them back for snapshots and replay."""

    def __init__(self, redis: Redis, max_events: int = 1000, history_len: int = 50) -> None:
        self._redis = redis
        self.max_events = max_events
        self.history_len = history_len
        self._publish = redis.register_script(PUBLISH_LUA)
        self._chat = redis.register_script(CHAT_LUA)
        self._delete = redis.register_script(DELETE_LUA)

    async def publish(self, keys: RoomKeys, event: dict[str, Any]) -> int:
        """Give ``event`` the room's next sequence number, log it and broadcast it."""
        payload = open_payload(event, 1)
        args: list[Any] = [keys.channel, self.max_events, payload]
        return int(await self._publish(keys=keys.log(), args=args))

    async def broadcast(self, keys: RoomKeys, event: dict[str, Any]) -> None:
        """Broadcast an unsequenced (ephemeral) event: counts that the next one supersedes."""
        await self._redis.publish(keys.channel, encode(event))

    async def broadcast_many(self, events: list[tuple[RoomKeys, dict[str, Any]]]) -> None:
        """Broadcast several unsequenced events in one round trip."""
        if not events:
            return
        async with self._redis.pipeline(transaction=False) as p:
            for keys, event in events:
                p.publish(keys.channel, encode(event))
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

    async def replay(self, keys: RoomKeys, since: int) -> tuple[int, list[bytes]] | None:
        """Events after ``since`` as (current seq, encoded events), or None when a gap exists.

        None means the client missed more than the stream keeps (or the room was reset), so
        it needs a fresh snapshot instead.
        """
        async with self._redis.pipeline(transaction=True) as p:
            p.get(keys.seq)
            p.xrange(keys.events, min=f"{since + 1}-0", max="+", count=self.max_events + 1)
            current_raw, entries = await p.execute()
        current = int(current_raw or 0)
        if since > current:
            return None
        events = [fields[b"e"] for _id, fields in entries]
        if len(events) != current - since:
            return None
        return current, events
