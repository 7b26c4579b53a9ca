-- Shared by the group-buy scripts (loaded first). KEYS of every group script start with:
-- 1 meta, 2 users, 3 orders, 4 holds, 5 events (the sale's own), then 6 offer, 7 groups,
-- 8 members, 9 due (all under the sale's hash tag, so one Cluster slot with its stock).
-- A group record is 'state|size|deadline_ms|opener|created_ms|price'; its members are
-- 'user=order_id,user=order_id' (a user id never holds ',' or '=').
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function parse_order(rec)
  return string.match(rec, '^(%a+)|([^|]+)|(%d+)|(%d+)|(%d+)|(%d+)$')
end

local function parse_group(rec)
  local state, size, deadline, opener, created, price =
    string.match(rec, '^(%a+)|(%d+)|(%d+)|([^|]+)|(%d+)|(%d+)$')
  return state, tonumber(size), tonumber(deadline), opener, created, price
end

local function group_record(state, size, deadline, opener, created, price)
  return state .. '|' .. size .. '|' .. deadline .. '|' .. opener .. '|' .. created .. '|' .. price
end

-- Each member as {user, order_id}.
local function members_of(text)
  local out = {}
  for entry in string.gmatch(text or '', '[^,]+') do
    local u, oid = string.match(entry, '^(.-)=(.+)$')
    out[#out + 1] = {u, oid}
  end
  return out
end

-- Move one order to a new state and log it. Stock and the user's count return only when it
-- leaves 'reserved' or 'paid' for a state that holds nothing.
local function move_order(oid, rec, new_state, new_exp)
  local state, user, qty, price, created, exp = parse_order(rec)
  local r = new_state .. '|' .. user .. '|' .. qty .. '|' .. price .. '|' .. created .. '|'
    .. (new_exp or exp)
  redis.call('HSET', KEYS[3], oid, r)
  if new_state == 'reserved' then
    redis.call('ZADD', KEYS[4], new_exp, oid)
  else
    redis.call('ZREM', KEYS[4], oid)
  end
  if new_state == 'expired' or new_state == 'refund' or new_state == 'cancelled' then
    redis.call('HINCRBY', KEYS[1], 'remaining', tonumber(qty))
    redis.call('HINCRBY', KEYS[2], user, -tonumber(qty))
  end
  redis.call('XADD', KEYS[5], '*', 'o', oid, 'r', r, 't', now)
  return r
end

local function is_live(oid)
  local rec = redis.call('HGET', KEYS[3], oid)
  if not rec then return false end
  local state = parse_order(rec)
  return state == 'reserved' or state == 'paid'
end
