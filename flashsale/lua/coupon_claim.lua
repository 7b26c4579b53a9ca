-- Claim one coupon of a drop: first come, first served, one per user. Atomic.
-- KEYS: coupons (drop records and counts), claims, the sale's meta   (the sale's hash tag)
-- ARGV: n, then n pairs: drop id, user (concurrent claims of one sale ride one call)
-- A drop record is 'kind|value|min_spend|expires_ms|total'; '<id>:left' counts what is left.
-- Returns per claim {code, drop_record, left, claim, the sale's remaining stock (for the room)}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function claim(did, user)
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
  return {'ok', drop, left, 'claimed', tonumber(redis.call('HGET', KEYS[3], 'remaining') or '0')}
end

local out = {}
for i = 0, tonumber(ARGV[1]) - 1 do
  out[i + 1] = claim(ARGV[2 + i * 2], ARGV[3 + i * 2])
end
return out
