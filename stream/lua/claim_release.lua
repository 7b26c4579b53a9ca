-- Delete a stream claim only while it is still ours (another worker may have taken over).
-- KEYS[1] the claim; ARGV[1] this worker's URL.
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
