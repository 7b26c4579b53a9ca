-- Post a chat message after the ban, mute, slow-mode and token-bucket checks.
-- KEYS[4] bans, [5] mutes, [6] mods, [7] state, [8] the user's bucket.
-- ARGV[3] event (header counts role and seq), [4] user, [5] base role (host|viewer),
-- [6] bucket capacity, [7] refill per second, [8] history length.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user = ARGV[4]
local role = ARGV[5]
-- Nobody moderates the host (an admin acts as one): a ban or mute made before the room knew
-- an admin's id does not silence them.
if role ~= 'host' then
  if redis.call('SISMEMBER', KEYS[4], user) == 1 then return {'banned', 0} end
  local muted = tonumber(redis.call('HGET', KEYS[5], user) or '0')
  if muted > now then return {'muted', muted} end
end
if role ~= 'host' and redis.call('SISMEMBER', KEYS[6], user) == 1 then role = 'moderator' end
if role ~= 'host' then
  local b = redis.call('HMGET', KEYS[8], 'tokens', 'ts', 'last', 'last_us')
  local cap = tonumber(ARGV[6])
  local tokens = tonumber(b[1] or cap)
  local ts = tonumber(b[2] or now)
  local last = tonumber(b[3] or 0)
  if role == 'viewer' then
    -- Only a post made after slow mode was switched on counts (microseconds: both are quick).
    local sm = redis.call('HMGET', KEYS[7], 'slow_mode_s', 'slow_since_us')
    local slow, since = tonumber(sm[1] or '0'), tonumber(sm[2] or '0')
    if slow > 0 and tonumber(b[4] or '0') > since and now - last < slow * 1000 then
      return {'slow_mode', last + slow * 1000 - now}
    end
  end
  local rate = tonumber(ARGV[7])
  tokens = math.min(cap, tokens + (now - ts) * rate / 1000)
  if tokens < 1 then
    redis.call('HSET', KEYS[8], 'tokens', tostring(tokens), 'ts', now)
    return {'rate_limited', math.ceil((1 - tokens) * 1000 / rate)}
  end
  -- %d: a number past 14 digits would be written as a float and lose its last digits.
  local now_us = string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2]))
  redis.call('HSET', KEYS[8], 'tokens', tostring(tokens - 1), 'ts', now, 'last', now,
    'last_us', now_us)
  redis.call('PEXPIRE', KEYS[8], 3600000)
end
local seq, ev = publish(ARGV[3] .. cmsgpack.pack('role') .. cmsgpack.pack(role))
redis.call('LPUSH', KEYS[3], ev)
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1)
return {'ok', seq}
