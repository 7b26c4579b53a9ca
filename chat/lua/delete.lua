-- Delete a chat message from the history and publish the deletion.
-- ARGV[3] the 'deleted' event (header counts seq), ARGV[4] the target chat message's seq.
local target = ARGV[4]
local found = redis.call('XRANGE', KEYS[2], target .. '-0', target .. '-0')
if #found == 0 then return {'not_found', 0} end
local ev = cmsgpack.unpack(found[1][2][2])
if ev['type'] ~= 'chat' then return {'not_found', 0} end
for _, item in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
  if cmsgpack.unpack(item)['seq'] == tonumber(target) then
    redis.call('LREM', KEYS[3], 1, item)
    break
  end
end
local seq = publish(ARGV[3])
return {'ok', seq}
