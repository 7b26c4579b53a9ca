-- A draw on a sale: create (commit), enter, close, award; all by Redis's clock.
-- KEYS: draw (hash), entries (set of entry ids), meta, users, orders, holds, events,
-- entrants (entry id -> user id; never published) -- all under the sale's hash tag, so the
-- winners' orders land with the sale's own.
-- ARGV[1] = 'create', seed hex, commitment, window ms, winners
-- ARGV[1] = 'enter', entry id, user  -> {'ok'} or {'duplicate'}
-- ARGV[1] = 'close', '1' to end now -> {'ok', seed, winners} (again until awarded)
-- ARGV[1] = 'award', entries hash, winning entry ids...  (once; each gets a reserved order)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local action = ARGV[1]
if action == 'create' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
  redis.call('HSET', KEYS[1], 'state', 'open', 'seed', ARGV[2], 'commit', ARGV[3],
    'end_ms', now + tonumber(ARGV[4]), 'winners', ARGV[5])
  return {'ok'}
end
local d = redis.call('HMGET', KEYS[1], 'state', 'end_ms', 'seed', 'winners')
if not d[1] then return {'draw_not_found'} end
local state, end_ms = d[1], tonumber(d[2])
if action == 'enter' then
  -- Entries close atomically: once Redis's clock passes the end no call adds one.
  if state ~= 'open' or now >= end_ms then return {'draw_closed'} end
  if redis.call('SADD', KEYS[2], ARGV[2]) == 1 then
    redis.call('HSET', KEYS[8], ARGV[2], ARGV[3])
    return {'ok'}
  end
  return {'duplicate'}
end
if action == 'close' then
  if state == 'awarded' then return {'already'} end
  -- ARGV[2] = '1': the host ends the entry window now.
  if now < end_ms and ARGV[2] ~= '1' then return {'draw_not_due'} end
  redis.call('HSET', KEYS[1], 'state', 'closed')
  return {'ok', d[3], d[4]}
end
-- award
if state ~= 'closed' then return {'already'} end
local m = redis.call('HMGET', KEYS[3], 'id', 'hold_ms', 'remaining', 'price')
local remaining, hold_ms = tonumber(m[3]), tonumber(m[2])
local won = {}
for i = 3, #ARGV do
  local user = redis.call('HGET', KEYS[8], ARGV[i])
  if remaining < 1 then break end
  local oid = m[1] .. '-' .. redis.call('HINCRBY', KEYS[3], 'seq', 1)
  local exp = now + hold_ms
  local rec = 'reserved|' .. user .. '|1|' .. m[4] .. '|' .. now .. '|' .. exp
  redis.call('HSET', KEYS[5], oid, rec)
  redis.call('ZADD', KEYS[6], exp, oid)
  redis.call('HINCRBY', KEYS[4], user, 1)
  redis.call('XADD', KEYS[7], '*', 'o', oid, 'r', rec, 't', now)
  remaining = remaining - 1
  won[#won + 1] = ARGV[i]
end
-- The drop's sale ends with its draw: nobody buys it first-come-first-served.
redis.call('HSET', KEYS[3], 'remaining', remaining, 'state', 'closed', 'end_ms', now)
if remaining == 0 then redis.call('HSET', KEYS[3], 'so', 1) end
redis.call('HSET', KEYS[1], 'state', 'awarded', 'ehash', ARGV[2], 'won',
  table.concat(won, ','), 'closed_ms', now)
return {'ok'}
