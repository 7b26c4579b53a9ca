-- Claim one coupon of a drop: first come, first served, one per user. Atomic.
-- KEYS: coupons (drop records and counts), claims   (both under the sale's hash tag)
-- ARGV: drop id, user
-- A drop record is 'kind|value|min_spend|expires_ms|total'; '<id>:left' counts what is left.
-- Returns {code, drop_record, left, claim}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local did, user = ARGV[1], ARGV[2]
local drop = redis.call('HGET', KEYS[1], did)
if not drop then return {'coupon_not_found'} end
local left = tonumber(redis.call('HGET', KEYS[1], did .. ':left'))
local prev = redis.call('HGET', KEYS[2], did .. '|' .. user)
if prev then return {'duplicate', drop, left, prev} end
local expires = tonumber(string.match(drop, '^%a+|%d+|%d+|(%d+)|'))
if now >= expires then return {'coupon_expired'} end
if left <= 0 then return {'coupons_gone'} end
left = redis.call('HINCRBY', KEYS[1], did .. ':left', -1)
redis.call('HSET', KEYS[2], did .. '|' .. user, 'claimed')
return {'ok', drop, left, 'claimed'}
