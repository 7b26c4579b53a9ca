-- The room's sequenced publish, shared by every script that appends an event (loaded first).
-- KEYS[1] seq, KEYS[2] events, KEYS[3] history; ARGV[1] channel, ARGV[2] stream max length.
-- INCRs the seq, appends the event (its map header counting the seq) to the stream, PUBLISHes it.
-- The published copy starts with Redis's clock in microseconds (msgpack uint64, stripped by
-- chat.protocol.unwrap): each process measures its fan-out's delivery lag from it.
local function publish(ev_head)
  local seq = redis.call('INCR', KEYS[1])
  local ev = ev_head .. cmsgpack.pack('seq') .. cmsgpack.pack(seq)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', ev)
  local t = redis.call('TIME')
  -- The publish time (Redis's clock, us) rides before the event: workers measure delivery lag.
  redis.call(PUBLISH_CMD, ARGV[1], cmsgpack.pack(tonumber(t[1]) * 1000000 + tonumber(t[2])) .. ev)
  return seq, ev
end
