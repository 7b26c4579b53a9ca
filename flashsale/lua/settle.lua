-- Move one order out of 'reserved': pay, cancel, or expire it. Atomic and idempotent.
-- KEYS: meta, users, orders, holds, events
-- ARGV: order_id, action ('pay' | 'cancel'), user ('' = any caller, e.g. an admin)
-- Stock returns (cancel, or an expired hold) exactly once: only the call that moves the
-- order from 'reserved' does it, and it removes the hold so the reaper cannot do it again.
-- Returns {code, order_record, remaining}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local oid, action, caller = ARGV[1], ARGV[2], ARGV[3]
local rec = redis.call('HGET', KEYS[3], oid)
if not rec then return {'order_not_found'} end
local state, user, qty, price, created, exp =
  string.match(rec, '^(%a+)|([^|]+)|(%d+)|(%d+)|(%d+)|(%d+)$')
if caller ~= '' and caller ~= user then return {'forbidden'} end
exp = tonumber(exp)
local function settle(new_state)
  local r = new_state .. '|' .. user .. '|' .. qty .. '|' .. price .. '|' .. created .. '|' .. exp
  redis.call('HSET', KEYS[3], oid, r)
  redis.call('ZREM', KEYS[4], oid)
  if new_state ~= 'paid' then
    redis.call('HINCRBY', KEYS[1], 'remaining', tonumber(qty))
    redis.call('HINCRBY', KEYS[2], user, -tonumber(qty))
  end
  redis.call('XADD', KEYS[5], '*', 'o', oid, 'r', r, 't', now)
  return r
end
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining'))
if state ~= 'reserved' then
  local want = (action == 'pay') and 'paid' or 'cancelled'
  if state == want then return {'already', rec, remaining} end
  return {state, rec, remaining}
end
if now >= exp then
  -- The hold ran out before the reaper got here: expire it now, in this same step.
  local r = settle('expired')
  return {'expired_now', r, remaining + tonumber(qty)}
end
if action == 'pay' then
  return {'ok', settle('paid'), remaining}
end
local r = settle('cancelled')
return {'ok', r, remaining + tonumber(qty)}
