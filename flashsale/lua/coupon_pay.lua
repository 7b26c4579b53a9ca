-- Pay a reserved order with a claimed coupon, atomically: the coupon is used once, on one
-- order, and the order is paid in the same step (or nothing changes).
-- KEYS: meta, users, orders, holds, events, coupons, claims, redeemed (the sale's hash tag)
-- ARGV: order id, user, drop id
-- Returns {code, order_record, discount_cents, remaining}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local oid, caller, did = ARGV[1], ARGV[2], ARGV[3]
local rec = redis.call('HGET', KEYS[3], oid)
if not rec then return {'order_not_found'} end
local state, user, qty, price, created, exp =
  string.match(rec, '^(%a+)|([^|]+)|(%d+)|(%d+)|(%d+)|(%d+)$')
if caller ~= user then return {'order_not_found'} end
if state ~= 'reserved' then
  -- A retry of this very payment gets its first answer back.
  local done = redis.call('HGET', KEYS[8], oid)
  if done and string.sub(done, 1, #did + 1) == did .. '|' then
    return {'already', rec, tonumber(string.sub(done, #did + 2))}
  end
  return {'order_state', rec}
end
-- A lapsed hold is left to the ordinary pay, which expires it and returns its unit.
if now >= tonumber(exp) then return {'hold_over', rec} end
local drop = redis.call('HGET', KEYS[6], did)
if not drop then return {'coupon_not_found'} end
local claim = redis.call('HGET', KEYS[7], did .. '|' .. user)
if not claim then return {'coupon_not_claimed'} end
if claim ~= 'claimed' then return {'coupon_used'} end
local kind, value, min_spend, expires = string.match(drop, '^(%a+)|(%d+)|(%d+)|(%d+)|')
if now >= tonumber(expires) then return {'coupon_expired'} end
local total = tonumber(qty) * tonumber(price)
if total < tonumber(min_spend) then return {'below_minimum_spend'} end
local discount
if kind == 'amount' then
  discount = math.min(tonumber(value), total)
else
  discount = math.floor(total * tonumber(value) / 100)
end
local r = 'paid|' .. user .. '|' .. qty .. '|' .. price .. '|' .. created .. '|' .. exp
redis.call('HSET', KEYS[3], oid, r)
redis.call('ZREM', KEYS[4], oid)
redis.call('XADD', KEYS[5], '*', 'o', oid, 'r', r, 't', now, 'c', did, 'd', discount)
redis.call('HSET', KEYS[7], did .. '|' .. user, 'used=' .. oid)
redis.call('HSET', KEYS[8], oid, did .. '|' .. discount)
return {'ok', r, discount, tonumber(redis.call('HGET', KEYS[1], 'remaining'))}
