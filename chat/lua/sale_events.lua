-- Publish a sale's phase transitions in its room, each exactly once and in order, whichever
-- process gets here first (flashsale/lua/phase.lua numbered them). Loaded after publish_fn.
-- KEYS[4] the room's state hash; ARGV[3] sale id, then pairs (transition number, event) in
-- order, each event's map header counting the appended seq.
-- Returns the number of the last transition the room has published for the sale.
-- The sale's first event also bumps the room's 'sales_v': joins read it with the room (one
-- MULTI) and read the room's sales from SQL again when it moved, so no snapshot whose seq
-- covers a sale's first event can lack the sale.
local field = 'sale_tn:' .. ARGV[3]
local before = tonumber(redis.call('HGET', KEYS[4], field) or '0')
local last = before
for i = 4, #ARGV, 2 do
  local n = tonumber(ARGV[i])
  if n > last then
    publish(ARGV[i + 1])
    last = n
  end
end
redis.call('HSET', KEYS[4], field, last)
if before == 0 and last > 0 then redis.call('HINCRBY', KEYS[4], 'sales_v', 1) end
return last
