-- Expire due holds of one sale, returning their stock exactly once.
-- KEYS: meta, users, orders, holds, events
-- ARGV: max orders to expire in this call
-- Returns {remaining, order_id, user, qty, order_id, user, qty, ...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {0}
for _, oid in ipairs(due) do
  redis.call('ZREM', KEYS[4], oid)
  local rec = redis.call('HGET', KEYS[3], oid)
  if rec then
    local state, user, qty, price, created, exp =
      string.match(rec, '^(%a+)|([^|]+)|(%d+)|(%d+)|(%d+)|(%d+)$')
    if state == 'reserved' then
      local r = 'expired|' .. user .. '|' .. qty .. '|' .. price .. '|' .. created .. '|' .. exp
      redis.call('HSET', KEYS[3], oid, r)
      redis.call('HINCRBY', KEYS[1], 'remaining', tonumber(qty))
      redis.call('HINCRBY', KEYS[2], user, -tonumber(qty))
      redis.call('XADD', KEYS[5], '*', 'o', oid, 'r', r, 't', now)
      table.insert(out, oid)
      table.insert(out, user)
      table.insert(out, qty)
    end
  end
end
out[1] = tonumber(redis.call('HGET', KEYS[1], 'remaining') or '0')
return out
