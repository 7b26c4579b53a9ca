-- Publish events that each have an id, each id once per room whichever process offers it
-- (group and coupon events: chat/social.py). Loaded after publish_fn.
-- KEYS[4] the room's set of published ids; ARGV[3..] pairs (id, event), each event's map
-- header counting the appended seq. Returns how many were published now.
local n = 0
for i = 3, #ARGV, 2 do
  if redis.call('SADD', KEYS[4], ARGV[i]) == 1 then
    publish(ARGV[i + 1])
    n = n + 1
  end
end
return n
