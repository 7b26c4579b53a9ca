-- Replace one user's id with a pseudonym in a sale's Redis records, atomically (buys, settles,
-- group joins and coupon claims of the sale wait), so that per-user counters keep matching the
-- orders and the group and coupon records (the audits).
-- KEYS: users, orders, then hashes whose fields and values are '|', ',' or '=' separated
--       (idem, group idem, group members, groups, coupon claims, coupon redemptions).
-- ARGV[1] user id, [2] pseudonym ('|', ',' and '=' are never in an id).   Returns fields changed.
local u, p = ARGV[1], ARGV[2]
local n = 0
local held = redis.call('HGET', KEYS[1], u)
if held then
  redis.call('HSET', KEYS[1], p, held)
  redis.call('HDEL', KEYS[1], u)
  n = n + 1
end
-- Order records are 'state|user|qty|...': only the second place is the buyer.
local orders = redis.call('HGETALL', KEYS[2])
for i = 1, #orders, 2 do
  local rec = orders[i + 1]
  local s1 = string.find(rec, '|', 1, true)
  local s2 = s1 and string.find(rec, '|', s1 + 1, true)
  if s2 and string.sub(rec, s1 + 1, s2 - 1) == u then
    redis.call('HSET', KEYS[2], orders[i], string.sub(rec, 1, s1) .. p .. string.sub(rec, s2))
    n = n + 1
  end
end
local function swap(text)
  return (string.gsub('|' .. text .. '|', '([|,=])([^|,=]+)%f[|,=]', function(sep, tok)
    if tok == u then return sep .. p end
  end)):sub(2, -2)
end
for k = 3, #KEYS do
  local all = redis.call('HGETALL', KEYS[k])
  for i = 1, #all, 2 do
    local f, v = swap(all[i]), swap(all[i + 1])
    if f ~= all[i] or v ~= all[i + 1] then
      if f ~= all[i] then redis.call('HDEL', KEYS[k], all[i]) end
      redis.call('HSET', KEYS[k], f, v)
      n = n + 1
    end
  end
end
return n
