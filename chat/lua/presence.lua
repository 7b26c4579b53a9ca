-- Record this process's viewer count; the process holding the gate publishes the room total.
-- KEYS[1] per-process counts, KEYS[2] publisher gate, KEYS[3] room state.
-- ARGV[1] process id, [2] local count, [3] stale after ms, [4] gate ms, [5] channel,
-- [6] the encoded 'viewers' event without its count value, [7] '1' to withdraw this process.
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
  redis.call(PUBLISH_CMD, ARGV[5], ARGV[6] .. cmsgpack.pack(total))
end
return total
