-- Expire this sale's unfilled groups whose deadline passed, by Redis's clock. Loaded after
-- group_common.lua. KEYS: meta, users, orders, holds, events, offer, groups, members, due
-- ARGV: max groups to expire in this call
-- Every member order still reserved expires and a paid one becomes 'refund'; either way its
-- unit returns exactly once (an order the flash-sale reaper or a cancel already released is
-- left as it is).
-- Returns {remaining, group_id, released, refunds, group_id, released, refunds, ...}
local due = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {0}
for _, gid in ipairs(due) do
  redis.call('ZREM', KEYS[9], gid)
  local group = redis.call('HGET', KEYS[7], gid)
  if group then
    local state, size, deadline, opener, created, price = parse_group(group)
    if state == 'open' then
      local released, refunds = 0, 0
      for _, mem in ipairs(members_of(redis.call('HGET', KEYS[8], gid))) do
        local rec = redis.call('HGET', KEYS[3], mem[2])
        local ostate = rec and parse_order(rec)
        if ostate == 'reserved' then
          move_order(mem[2], rec, 'expired')
          released = released + 1
        elseif ostate == 'paid' then
          move_order(mem[2], rec, 'refund')
          released = released + 1
          refunds = refunds + 1
        end
      end
      redis.call('HSET', KEYS[7], gid,
        group_record('expired', size, deadline, opener, created, price))
      table.insert(out, gid)
      table.insert(out, released)
      table.insert(out, refunds)
    end
  end
end
out[1] = tonumber(redis.call('HGET', KEYS[1], 'remaining') or '0')
return out
