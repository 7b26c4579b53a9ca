-- Reserve stock for a batch of buyers of one sale, atomically, in one round trip.
-- KEYS: meta, users, idem, orders, holds, events   (all share the sale's hash tag)
-- ARGV: n, then n quads (user, idempotency key, qty, member: 1 pays the sale's mprice if set)
-- Returns one reply per buyer: {code, order_id, order_record, remaining}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local out = {}
local m = redis.call('HMGET', KEYS[1], 'state', 'start_ms', 'end_ms', 'remaining',
  'limit', 'hold_ms', 'price', 'id', 'mprice')
if not m[1] then
  for i = 1, n do out[i] = {'sale_not_found'} end
  return out
end
local state, start_ms, end_ms = m[1], tonumber(m[2]), tonumber(m[3])
local remaining, limit, hold_ms = tonumber(m[4]), tonumber(m[5]), tonumber(m[6])
local price, sale_id = m[7], m[8]
local mprice = m[9]
if mprice == '' then mprice = false end
-- Enough for any honest buyer (retries reuse their key and are not counted).
local max_attempts = math.max(100, limit * 4)
local window
if state == 'closed' or now >= end_ms then
  window = 'ended'
elseif start_ms > 0 and now >= start_ms then
  -- Opening sets start_ms (now, or after a countdown); a scheduled start opens by itself.
  window = 'ok'
else
  window = 'not_open'
end
local changed = false
for i = 0, n - 1 do
  local user, key, qty = ARGV[2 + i * 4], ARGV[3 + i * 4], tonumber(ARGV[4 + i * 4])
  local unit = (ARGV[5 + i * 4] == '1' and mprice) or price
  local ifield = user .. '|' .. key
  -- A retry gets its first answer back even after the window closed (a buyer whose reply was
  -- lost in the last second must still learn its order id).
  local prev = redis.call('HGET', KEYS[3], ifield)
  if prev then
    if string.sub(prev, 1, 1) == '!' then
      out[i + 1] = {string.sub(prev, 2)}
    else
      out[i + 1] = {'duplicate', prev, redis.call('HGET', KEYS[4], prev), remaining}
    end
  elseif window ~= 'ok' then
    -- Outside the window nothing is recorded, so a retry after opening is judged afresh.
    out[i + 1] = {window}
  else
    -- Each buyer's attempts are capped, so unique keys cannot grow the idempotency hash
    -- without bound ('#' never starts a user id, so this field cannot clash with user|key).
    local tries = redis.call('HINCRBY', KEYS[3], '#|' .. user, 1)
    if tries > max_attempts then
      out[i + 1] = {'too_many_attempts'}
    else
      local held = tonumber(redis.call('HGET', KEYS[2], user) or '0')
      if held + qty > limit then
        redis.call('HSET', KEYS[3], ifield, '!limit_reached')
        out[i + 1] = {'limit_reached'}
      elseif remaining < qty then
        redis.call('HSET', KEYS[3], ifield, '!sold_out')
        out[i + 1] = {'sold_out'}
      else
        remaining = remaining - qty
        changed = true
        local oid = sale_id .. '-' .. redis.call('HINCRBY', KEYS[1], 'seq', 1)
        local exp = now + hold_ms
        local rec = 'reserved|' .. user .. '|' .. qty .. '|' .. unit .. '|' .. now .. '|' .. exp
        redis.call('HSET', KEYS[4], oid, rec)
        redis.call('ZADD', KEYS[5], exp, oid)
        redis.call('HINCRBY', KEYS[2], user, qty)
        redis.call('HSET', KEYS[3], ifield, oid)
        redis.call('XADD', KEYS[6], '*', 'o', oid, 'r', rec, 't', now)
        out[i + 1] = {'ok', oid, rec, remaining}
      end
    end
  end
end
if changed then
  if remaining == 0 then
    -- 'so': it sold out since phase.lua last looked, even if stock is back by its next look.
    redis.call('HSET', KEYS[1], 'remaining', remaining, 'so', 1)
  else
    redis.call('HSET', KEYS[1], 'remaining', remaining)
  end
end
return out
