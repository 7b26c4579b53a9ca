-- Shared by the auction scripts (loaded first). A lot lives on a sale of one unit that is
-- never opened for buying: its keys share the sale's hash tag {s<ID>}, so the winner's order
-- goes into the sale's own orders, holds and event stream (pay, cancel, expiry and the
-- persister treat it as any other order). KEYS of every auction script start with:
-- 1 lot (hash), 2 bids (list 'user|amount|ms|name', ascending amounts), 3 meta, 4 users,
-- 5 orders, 6 holds, 7 events
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Reserve the lot's one unit for ``user`` at ``amount`` with the sale's payment hold.
local function reserve_for(user, amount)
  local m = redis.call('HMGET', KEYS[3], 'id', 'hold_ms', 'remaining')
  if tonumber(m[3]) < 1 then return nil end
  local oid = m[1] .. '-' .. redis.call('HINCRBY', KEYS[3], 'seq', 1)
  local exp = now + tonumber(m[2])
  local rec = 'reserved|' .. user .. '|1|' .. amount .. '|' .. now .. '|' .. exp
  redis.call('HSET', KEYS[5], oid, rec)
  redis.call('ZADD', KEYS[6], exp, oid)
  redis.call('HINCRBY', KEYS[4], user, 1)
  redis.call('HSET', KEYS[3], 'remaining', tonumber(m[3]) - 1, 'so', 1)
  redis.call('XADD', KEYS[7], '*', 'o', oid, 'r', rec, 't', now)
  return oid
end

-- Each bid as {user, amount, ms, name}.
local function parse_bid(s)
  local u, a, ms, name = string.match(s, '^([^|]+)|(%d+)|(%d+)|(.*)$')
  return u, tonumber(a), tonumber(ms), name
end
