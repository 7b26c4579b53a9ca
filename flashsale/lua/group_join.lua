-- Open a group (its opener reserves one unit) or join one, atomically. Loaded after
-- group_common.lua. KEYS: meta, users, orders, holds, events, offer, groups, members, due, gidem
-- ARGV: n, then n triples: 'open', user, idempotency key  |  'join', user, group id
-- (concurrent requests of one sale ride one call, like buys; each gets its own reply)
-- Each member's unit becomes an order at the group price at once, held until the group's
-- deadline (payable early); when the group fills, every reserved member order gets the sale's
-- payment hold from now.
-- Returns per request {code, group_id, order_id, order_record, group_record, members,
-- remaining}
local function decide(action, user, arg)
  local m = redis.call('HMGET', KEYS[1], 'state', 'start_ms', 'end_ms', 'remaining', 'limit',
    'hold_ms', 'id')
  if not m[1] then return {'sale_not_found'} end
  local remaining = tonumber(m[4])
  local function reply_existing(code, gid, oid)
    return {code, gid, oid, redis.call('HGET', KEYS[3], oid), redis.call('HGET', KEYS[7], gid),
      redis.call('HGET', KEYS[8], gid) or '', remaining}
  end
  local gid, group
  if action == 'join' then
    gid = arg
    group = redis.call('HGET', KEYS[7], gid)
    if not group then return {'group_not_found'} end
    for _, mem in ipairs(members_of(redis.call('HGET', KEYS[8], gid))) do
      if mem[1] == user then return reply_existing('duplicate', gid, mem[2]) end
    end
    local gstate, _, deadline = parse_group(group)
    if gstate ~= 'open' or now >= deadline then
      return {gstate == 'filled' and 'group_full' or 'group_expired'}
    end
  else
    local prev = redis.call('HGET', KEYS[10], user .. '|' .. arg)
    if prev then
      local first = string.match(prev, '^([^=]+)=')
      if first then return reply_existing('duplicate', first, string.sub(prev, #first + 2)) end
      return {prev}
    end
  end
  local offer = redis.call('HMGET', KEYS[6], 'state', 'price', 'size', 'ttl_ms')
  if offer[1] ~= 'open' then return {'no_group_offer'} end
  local state, start_ms, end_ms = m[1], tonumber(m[2]), tonumber(m[3])
  if state == 'closed' or now >= end_ms then return {'ended'} end
  if start_ms == 0 or now < start_ms then return {'not_open'} end
  local limit, hold_ms, sale_id = tonumber(m[5]), tonumber(m[6]), m[7]
  if action == 'open' then
    -- Distinct opening attempts are capped like buys, so keys cannot grow the hash without bound.
    local tries = redis.call('HINCRBY', KEYS[10], '#|' .. user, 1)
    if tries > math.max(100, limit * 4) then return {'too_many_attempts'} end
  end
  local held = tonumber(redis.call('HGET', KEYS[2], user) or '0')
  local refusal
  if held + 1 > limit then
    refusal = 'limit_reached'
  elseif remaining < 1 then
    refusal = 'sold_out'
  end
  if refusal then
    if action == 'open' then redis.call('HSET', KEYS[10], user .. '|' .. arg, refusal) end
    return {refusal}
  end
  local size, price, deadline, opener, created
  if action == 'open' then
    price, size = offer[2], tonumber(offer[3])
    deadline = math.min(now + tonumber(offer[4]), end_ms)
    gid = sale_id .. '-g' .. redis.call('HINCRBY', KEYS[6], 'seq', 1)
    opener, created = user, now
    group = group_record('open', size, deadline, user, now, price)
    redis.call('HSET', KEYS[7], gid, group)
    redis.call('ZADD', KEYS[9], deadline, gid)
  else
    local _state
    _state, size, deadline, opener, created, price = parse_group(group)
  end
  local oid = sale_id .. '-' .. redis.call('HINCRBY', KEYS[1], 'seq', 1)
  local rec = 'reserved|' .. user .. '|1|' .. price .. '|' .. now .. '|' .. deadline
  redis.call('HSET', KEYS[3], oid, rec)
  redis.call('ZADD', KEYS[4], deadline, oid)
  redis.call('HINCRBY', KEYS[2], user, 1)
  remaining = redis.call('HINCRBY', KEYS[1], 'remaining', -1)
  -- The sell-out flag phase.lua reads, as buy.lua sets it.
  if remaining == 0 then redis.call('HSET', KEYS[1], 'so', 1) end
  redis.call('XADD', KEYS[5], '*', 'o', oid, 'r', rec, 't', now)
  if action == 'open' then redis.call('HSET', KEYS[10], user .. '|' .. arg, gid .. '=' .. oid) end
  local text = redis.call('HGET', KEYS[8], gid)
  text = (text and text ~= '') and (text .. ',' .. user .. '=' .. oid) or (user .. '=' .. oid)
  -- Members who cancelled or let their hold lapse before the group filled do not count.
  local live = {}
  for _, mem in ipairs(members_of(text)) do
    if is_live(mem[2]) then live[#live + 1] = mem end
  end
  local code = 'ok'
  if #live >= size then
    code = 'filled'
    local kept = {}
    for _, mem in ipairs(live) do
      local r = redis.call('HGET', KEYS[3], mem[2])
      if parse_order(r) == 'reserved' then
        r = move_order(mem[2], r, 'reserved', now + hold_ms)
      end
      if mem[2] == oid then rec = r end
      kept[#kept + 1] = mem[1] .. '=' .. mem[2]
    end
    text = table.concat(kept, ',')
    group = group_record('filled', size, deadline, opener, created, price)
    redis.call('HSET', KEYS[7], gid, group)
    redis.call('ZREM', KEYS[9], gid)
  end
  redis.call('HSET', KEYS[8], gid, text)
  return {code, gid, oid, rec, group, text, remaining}
end

local out = {}
for i = 0, tonumber(ARGV[1]) - 1 do
  out[i + 1] = decide(ARGV[2 + i * 3], ARGV[3 + i * 3], ARGV[4 + i * 3])
end
return out
