-- Rebuild one sale's live state from SQL (flashsale/reconciler.py), atomically: nothing can buy
-- between the old state going and the new one being whole.
-- KEYS: meta, users, idem, orders, holds, events, phases   (all share the sale's hash tag)
-- ARGV: force ('1': replace a sale whose meta is present), the events stream's last id the
-- caller saw before reading SQL ('' = no stream), the persister's group, seq floor (highest
-- order number SQL knows), seq gap, then counted lists:
--   n meta field/value pairs; n orders as (order id, record); n users as (user, units held)
-- Returns {'present'} (meta exists, no force), {'changed'} (events arrived since the caller
-- read SQL: read again), or {'ok', remaining, seq, tn}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then return {'present'} end
local last = redis.call('XREVRANGE', KEYS[6], '+', '-', 'COUNT', 1)
local last_id = (last[1] and last[1][1]) or ''
if last_id ~= ARGV[2] then return {'changed'} end
local old = redis.call('HMGET', KEYS[1], 'seq', 'tn')
-- Order ids handed out in writes Redis lost are unknown: skip far past the highest one known,
-- so no buyer who was told such an id ever sees it given to someone else.
local seq = math.max(tonumber(ARGV[4]), tonumber(old[1] or '0')) + tonumber(ARGV[5])
-- Phase transitions are numbered per sale and rooms drop numbers they already published:
-- continue above any number used before (one transition per millisecond at most).
local tn = math.max(now, tonumber(old[2] or '0'))
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[7])
local i = 6
local n = tonumber(ARGV[i])
local state, end_ms = nil, nil
for j = 1, n do
  local f, v = ARGV[i + 2 * j - 1], ARGV[i + 2 * j]
  redis.call('HSET', KEYS[1], f, v)
  if f == 'state' then state = v elseif f == 'end_ms' then end_ms = tonumber(v) end
end
redis.call('HSET', KEYS[1], 'seq', string.format('%d', seq), 'tn', string.format('%d', tn))
if state == 'closed' or (end_ms and now >= end_ms) then
  -- Rooms already heard it end: do not announce 'closed' a second time.
  redis.call('HSET', KEYS[1], 'ann', 'closed')
end
-- Many fields per command (a call per order tripled the time Redis was blocked), in chunks
-- that stay within unpack's stack limit.
local function flush(cmd, key, args)
  if #args > 0 then redis.call(cmd, key, unpack(args)) end
  return {}
end
i = i + 2 * n + 1
n = tonumber(ARGV[i])
local fields, holds = {}, {}
for j = 1, n do
  local oid, rec = ARGV[i + 2 * j - 1], ARGV[i + 2 * j]
  fields[#fields + 1] = oid
  fields[#fields + 1] = rec
  if string.sub(rec, 1, 9) == 'reserved|' then
    holds[#holds + 1] = string.match(rec, '|(%d+)$')
    holds[#holds + 1] = oid
  end
  if #fields >= 1000 then fields = flush('HSET', KEYS[4], fields) end
  if #holds >= 1000 then holds = flush('ZADD', KEYS[5], holds) end
end
flush('HSET', KEYS[4], fields)
flush('ZADD', KEYS[5], holds)
i = i + 2 * n + 1
n = tonumber(ARGV[i])
fields = {}
for j = 1, n do
  fields[#fields + 1] = ARGV[i + 2 * j - 1]
  fields[#fields + 1] = ARGV[i + 2 * j]
  if #fields >= 1000 then fields = flush('HSET', KEYS[2], fields) end
end
flush('HSET', KEYS[2], fields)
-- Idempotency answers that point at an order Redis no longer has would answer 'duplicate'
-- with no order: forget them (the buyer's retry is judged afresh, within the user's limit).
if redis.call('EXISTS', KEYS[3]) == 1 then
  local idem = redis.call('HGETALL', KEYS[3])
  for j = 1, #idem, 2 do
    local v = idem[j + 1]
    if string.sub(v, 1, 1) ~= '!' and string.sub(idem[j], 1, 2) ~= '#|'
        and redis.call('HEXISTS', KEYS[4], v) == 0 then
      redis.call('HDEL', KEYS[3], idem[j])
    end
  end
end
if redis.call('EXISTS', KEYS[6]) == 0 then
  -- A fresh stream with the persister's group, so new events are read from the first one.
  redis.call('XGROUP', 'CREATE', KEYS[6], ARGV[3], '0', 'MKSTREAM')
end
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining'))
return {'ok', remaining, seq, tn}
