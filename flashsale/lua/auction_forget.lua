-- Replace one user's id with a pseudonym in a sale's auction and draw records, atomically.
-- KEYS: lot (hash), bids (list 'user|amount|ms|name'), bid idempotency (hash), offered (set),
--       draw entrants (hash entry id -> user)
-- ARGV[1] user id, [2] pseudonym, [3] the user's display name ('' when unknown).
-- A bid's shown name goes too (the bid and its amount stay: the audit checks them).
-- Returns the records changed.
local u, p, name = ARGV[1], ARGV[2], ARGV[3]
local n = 0
if redis.call('HGET', KEYS[1], 'winner') == u then
  redis.call('HSET', KEYS[1], 'winner', p)
  n = n + 1
end
if name ~= '' and redis.call('HGET', KEYS[1], 'leader_name') == name then
  redis.call('HSET', KEYS[1], 'leader_name', '')
  n = n + 1
end
local bids = redis.call('LRANGE', KEYS[2], 0, -1)
for i, bid in ipairs(bids) do
  local bu, rest = string.match(bid, '^([^|]+)|(%d+|%d+)|')
  if bu == u then
    redis.call('LSET', KEYS[2], i - 1, p .. '|' .. rest .. '|')
    n = n + 1
  end
end
local idem = redis.call('HGETALL', KEYS[3])
for i = 1, #idem, 2 do
  local f = idem[i]
  local head, tail = string.match(f, '^([^|]+)|(.*)$')
  if head == u then
    redis.call('HDEL', KEYS[3], f)
    redis.call('HSET', KEYS[3], p .. '|' .. tail, idem[i + 1])
    n = n + 1
  elseif head == '#' and tail == u then
    redis.call('HDEL', KEYS[3], f)
    redis.call('HSET', KEYS[3], '#|' .. p, idem[i + 1])
    n = n + 1
  end
end
if redis.call('SREM', KEYS[4], u) == 1 then
  redis.call('SADD', KEYS[4], p)
  n = n + 1
end
local entrants = redis.call('HGETALL', KEYS[5])
for i = 1, #entrants, 2 do
  if entrants[i + 1] == u then
    redis.call('HSET', KEYS[5], entrants[i], p)
    n = n + 1
  end
end
return n
