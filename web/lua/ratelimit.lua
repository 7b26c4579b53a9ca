-- One rate-limit check (GCRA, the generic cell rate algorithm), atomically.
-- KEYS[1]: the client's key for this limit (its theoretical arrival time, in microseconds).
-- ARGV[1]: emission interval in microseconds (the period divided by the limit).
-- ARGV[2]: burst: how many requests may arrive at once.
-- Returns 0 when the request is allowed (and counts it), else microseconds until it would be.
-- Redis's own clock, so every worker (and machine) judges by the same time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local allow_at = tat + interval - burst * interval
if now < allow_at then
  return allow_at - now
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
return 0
