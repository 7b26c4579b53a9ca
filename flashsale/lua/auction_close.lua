-- Open a lot, close it when Redis's clock passes its end, or offer it to the runner-up.
-- Loaded after auction_common.lua. KEYS: lot, bids, meta, users, orders, holds, events,
-- offered (the set of users the lot was given to)
-- ARGV[1] = 'open': the lot runs for its duration from now.
-- ARGV[1] = 'close': closes the lot once, if due; the highest bid wins if it meets the
--   reserve, and gets a reserved order with the sale's payment hold.
-- ARGV[1] = 'runner_up': when the winning order has expired or was cancelled, the next
--   highest bidder who has not been offered the lot gets an order at their own highest bid.
-- Returns {code, state, end_ms, winner or '', amount, order_id or ''}
local m = redis.call('HMGET', KEYS[1], 'state', 'end_ms', 'duration_ms', 'reserve', 'bid',
  'winner', 'order', 'nbids')
if not m[1] then return {'lot_not_found'} end
local state, end_ms = m[1], tonumber(m[2])
local action = ARGV[1]
local function reply(code)
  local w = redis.call('HMGET', KEYS[1], 'state', 'end_ms', 'winner', 'price', 'order')
  return {code, w[1], tonumber(w[2]), w[3] or '', tonumber(w[4] or '0'), w[5] or ''}
end
if action == 'open' then
  if state ~= 'scheduled' then return reply('already') end
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_ms', now,
    'end_ms', now + tonumber(m[3]))
  return reply('ok')
end
if action == 'close' then
  if state ~= 'open' or now < end_ms then return reply('not_due') end
  -- The sale itself ends with the lot, so the sale workers retire it once settled.
  redis.call('HSET', KEYS[3], 'state', 'closed', 'end_ms', now)
  local nbids = tonumber(m[8])
  if nbids == 0 or tonumber(m[5]) < tonumber(m[4]) then
    redis.call('HSET', KEYS[1], 'state', 'unsold', 'closed_ms', now)
    return reply('unsold')
  end
  local user, amount = parse_bid(redis.call('LINDEX', KEYS[2], -1))
  local oid = reserve_for(user, amount)
  redis.call('HSET', KEYS[1], 'state', 'won', 'closed_ms', now, 'winner', user,
    'price', amount, 'order', oid)
  redis.call('SADD', KEYS[8], user)
  return reply('won')
end
-- runner_up
if state ~= 'won' then return reply('not_won') end
local orec = redis.call('HGET', KEYS[5], m[7])
local ostate = orec and string.match(orec, '^(%a+)|')
if ostate ~= 'expired' and ostate ~= 'cancelled' then return reply('winner_holds') end
local bids = redis.call('LRANGE', KEYS[2], 0, -1)
for i = #bids, 1, -1 do
  local user, amount = parse_bid(bids[i])
  if redis.call('SISMEMBER', KEYS[8], user) == 0 then
    if tonumber(amount) < tonumber(m[4]) then return reply('no_runner_up') end
    local oid = reserve_for(user, amount)
    if not oid then return reply('no_runner_up') end
    redis.call('SADD', KEYS[8], user)
    redis.call('HSET', KEYS[1], 'winner', user, 'price', amount, 'order', oid)
    return reply('ok')
  end
end
return reply('no_runner_up')
