-- Publish a sale's phase transitions in its room, each exactly once and in order, whichever
-- process gets here first (flashsale/lua/phase.lua numbered them).
-- KEYS: the room's seq, events, state
-- ARGV: channel, max stream length, sale id, then pairs (transition number, event) in order;
--   each event's map header counts the 'seq' appended here.
-- Returns the number of the last transition the room has published for the sale.
local function publish(ev_head)
  local seq = redis.call('INCR', KEYS[1])
  local ev = ev_head .. cmsgpack.pack('seq') .. cmsgpack.pack(seq)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', ev)
  redis.call('PUBLISH', ARGV[1], ev)
end
local field = 'sale_tn:' .. ARGV[3]
local last = tonumber(redis.call('HGET', KEYS[3], field) or '0')
for i = 4, #ARGV, 2 do
  local n = tonumber(ARGV[i])
  if n > last then
    publish(ARGV[i + 1])
    last = n
  end
end
redis.call('HSET', KEYS[3], field, last)
return last
