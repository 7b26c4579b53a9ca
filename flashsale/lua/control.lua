-- Create, open or close a sale. KEYS: meta
-- ARGV[1] = 'init': ARGV[2..] field/value pairs; creates the sale only if it does not exist.
-- ARGV[1] = 'open': ARGV[2] = countdown in ms; the window starts then, for duration_ms.
-- ARGV[1] = 'close': the window ends now.
-- Returns {code, state, start_ms, end_ms, remaining}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local action = ARGV[1]
if action == 'init' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    local fields = {}
    for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
    redis.call('HSET', KEYS[1], unpack(fields))
  end
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return {'sale_not_found'}
end
local m = redis.call('HMGET', KEYS[1], 'state', 'start_ms', 'end_ms', 'remaining', 'duration_ms')
local state, start_ms, end_ms = m[1], tonumber(m[2]), tonumber(m[3])
local code = 'ok'
if action == 'open' then
  if state == 'closed' or now >= end_ms then
    code = 'ended'
  elseif state == 'open' or (start_ms > 0 and now >= start_ms) then
    -- A sale created with a start time opens by itself (its state stays 'scheduled'):
    -- opening it again must not start a new countdown and stop the buying.
    code = 'already'
  else
    start_ms = now + tonumber(ARGV[2])
    end_ms = start_ms + tonumber(m[5])
    state = 'open'
    redis.call('HSET', KEYS[1], 'state', state, 'start_ms', start_ms, 'end_ms', end_ms)
  end
elseif action == 'close' then
  if state == 'closed' then
    code = 'already'
  else
    state = 'closed'
    if end_ms > now then end_ms = now end
    redis.call('HSET', KEYS[1], 'state', state, 'end_ms', end_ms)
  end
end
return {code, state, start_ms, end_ms, tonumber(m[4])}
