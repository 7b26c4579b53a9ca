-- Replace one user's id with a pseudonym in a sale's Redis records, atomically (buys and
-- settles of the sale wait), so that per-user counters keep matching the orders (the audit).
-- KEYS: users, idem, orders   ARGV[1] user id, [2] pseudonym.   Returns the fields rewritten.
local u, p = ARGV[1], ARGV[2]
local n = 0
local held = redis.call('HGET', KEYS[1], u)
if held then
  redis.call('HSET', KEYS[1], p, held)
  redis.call('HDEL', KEYS[1], u)
  n = n + 1
end
-- Idempotency fields are 'user|key', and '#|user' counts attempts ('|' is never in an id).
local idem = redis.call('HGETALL', KEYS[2])
for i = 1, #idem, 2 do
  local f = idem[i]
  local new = nil
  if f == '#|' .. u then
    new = '#|' .. p
  elseif string.sub(f, 1, #u + 1) == u .. '|' then
    new = p .. string.sub(f, #u + 1)
  end
  if new then
    redis.call('HSET', KEYS[2], new, idem[i + 1])
    redis.call('HDEL', KEYS[2], f)
    n = n + 1
  end
end
-- Order records are 'state|user|qty|...'.
local orders = redis.call('HGETALL', KEYS[3])
for i = 1, #orders, 2 do
  local rec = orders[i + 1]
  local s1 = string.find(rec, '|', 1, true)
  local s2 = s1 and string.find(rec, '|', s1 + 1, true)
  if s2 and string.sub(rec, s1 + 1, s2 - 1) == u then
    redis.call('HSET', KEYS[3], orders[i], string.sub(rec, 1, s1) .. p .. string.sub(rec, s2))
    n = n + 1
  end
end
return n
