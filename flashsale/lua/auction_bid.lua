-- Accept or refuse a batch of bids on one lot, atomically, by Redis's clock. Loaded after
-- auction_common.lua. KEYS: lot, bids, meta, users, orders, holds, events, bid idempotency
-- ARGV: n, then n quads (user, idempotency key, amount, public name or '')
-- A bid is accepted when the lot is open, Redis's clock is before its end, the bidder is not
-- the lot's seller (who would bid their own price up), and the amount is
-- at least the start (first bid) or the current bid plus the increment. A bid within the
-- extension window of the end moves the end to ``now + extend_ms``.
-- Returns per bid {code, amount, end_ms, bids, current}; ends with {'#', last accepted
-- bid's amount, end_ms, bids, leader name, extended (0/1)} for the room.
local lot = redis.call('HMGET', KEYS[1], 'state', 'start', 'inc', 'end_ms', 'window_ms',
  'extend_ms', 'bid', 'nbids', 'seller')
local n = tonumber(ARGV[1])
local out = {}
if not lot[1] then
  for i = 1, n do out[i] = {'lot_not_found'} end
  -- The caller always pops a summary last: without one, the last refusal was read as it.
  out[n + 1] = {'#', 0, 0, 0, '', 0}
  return out
end
local state, start, inc = lot[1], tonumber(lot[2]), tonumber(lot[3])
local end_ms, window, extend = tonumber(lot[4]), tonumber(lot[5]), tonumber(lot[6])
local bid, nbids, seller = tonumber(lot[7]), tonumber(lot[8]), lot[9]
local accepted, extended, leader_name = false, 0, ''
for i = 0, n - 1 do
  local user, key, amount, name = ARGV[2 + i * 4], ARGV[3 + i * 4], tonumber(ARGV[4 + i * 4]),
    ARGV[5 + i * 4]
  local ifield = user .. '|' .. key
  local prev = redis.call('HGET', KEYS[8], ifield)
  if prev then
    out[i + 1] = {'duplicate:' .. prev, 0, end_ms, nbids, bid}
  elseif state == 'scheduled' then
    out[i + 1] = {'lot_not_open', 0, end_ms, nbids, bid}
  elseif state ~= 'open' or now >= end_ms then
    out[i + 1] = {'lot_closed', 0, end_ms, nbids, bid}
  elseif user == seller then
    out[i + 1] = {'own_lot', 0, end_ms, nbids, bid}
  else
    local tries = redis.call('HINCRBY', KEYS[8], '#|' .. user, 1)
    local least = nbids == 0 and start or bid + inc
    if tries > 1000 then
      out[i + 1] = {'too_many_attempts', 0, end_ms, nbids, bid}
    elseif amount < least then
      out[i + 1] = {'bid_too_low', least, end_ms, nbids, bid}
    else
      bid, nbids, accepted, leader_name = amount, nbids + 1, true, name
      redis.call('RPUSH', KEYS[2], user .. '|' .. amount .. '|' .. now .. '|' .. name)
      if end_ms - now <= window then
        end_ms = now + extend
        extended = 1
      end
      redis.call('HSET', KEYS[8], ifield, amount)
      out[i + 1] = {'ok', amount, end_ms, nbids, bid}
    end
  end
end
if accepted then
  redis.call('HSET', KEYS[1], 'bid', bid, 'nbids', nbids, 'end_ms', end_ms, 'leader_name',
    leader_name)
end
out[n + 1] = {'#', accepted and bid or 0, end_ms, nbids, leader_name, extended}
return out
