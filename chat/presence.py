"""Viewer counts across processes: each reports its sockets, one publishes the sum."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from chat.keys import RoomKeys
from chat.protocol import encode, open_payload

# KEYS[1] per-process counts, KEYS[2] publisher gate, KEYS[3] room state.
# ARGV[1] process id, [2] local count, [3] stale after ms, [4] gate ms, [5] channel,
# [6] the encoded 'viewers' event without its count value, [7] '1' to withdraw this process.
PRESENCE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[7] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. now)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 10)
end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[4]) then return -1 end
local total = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local v = all[i + 1]
  local sep = string.find(v, '|', 1, true)
  local n = tonumber(string.sub(v, 1, sep - 1))
  local ts = tonumber(string.sub(v, sep + 1))
  if now - ts > tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    total = total + n
  end
end
local prev = tonumber(redis.call('HGET', KEYS[3], 'viewers') or '-1')
if prev ~= total then
  redis.call('HSET', KEYS[3], 'viewers', total)
  redis.call('PUBLISH', ARGV[5], ARGV[6] .. cmsgpack.pack(total))
end
return total
"""

_VIEWERS_HEAD = open_payload({"type": "viewers"}, 1) + encode("count")


class Presence:
    """Reports this process's viewer count per room; a gate lets one process publish per tick.

    A process that dies stops refreshing its entry; the others drop it once it is stale, so the
    count heals within a few ticks.
    """

    def __init__(self, redis: Redis, process_id: str, interval_s: float = 2.0) -> None:
        self._process_id = process_id
        self._interval_ms = int(interval_s * 1000)
        self._script = redis.register_script(PRESENCE_LUA)

    async def report(self, keys: RoomKeys, local_count: int, withdraw: bool = False) -> int:
        """Record this process's count; returns the room total when this process published it."""
        args: list[Any] = [
            self._process_id, local_count, self._interval_ms * 3,
            max(self._interval_ms - 100, 100), keys.channel, _VIEWERS_HEAD,
            "1" if withdraw else "0",
        ]  # fmt: skip
        keys_ = [keys.viewers, keys.viewers_gate, keys.state]
        return int(await self._script(keys=keys_, args=args))
