-- Decide by Redis's clock whether a sale moved to another phase since it was last announced,
-- and record the transition exactly once (only the call that sees the change appends it).
-- KEYS: meta, phases (list of the sale's last transitions, oldest first)
-- ARGV[1]: the caller already holds transitions up to this number; only later ones return.
-- Phases as announced: scheduled, countdown, open, sold_out (open with no stock), closed.
-- Returns {stream, last transition number, ms until the clock alone changes the phase (-1:
-- never), transition, ...}; each transition is 'n|phase|state|start_ms|end_ms|remaining|at_ms'
-- (state: the meta state). {} when the sale has no live state.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('HMGET', KEYS[1], 'state', 'start_ms', 'end_ms', 'remaining', 'stream',
  'ann', 'tn', 'ann_w', 'so')
if not m[1] then return {} end
local state, start_ms, end_ms = m[1], tonumber(m[2]), tonumber(m[3])
local remaining = tonumber(m[4])
local cur
if state == 'closed' or now >= end_ms then
  cur = 'closed'
elseif start_ms > 0 and now >= start_ms then
  cur = (remaining > 0) and 'open' or 'sold_out'
elseif start_ms > 0 then
  cur = 'countdown'
else
  cur = 'scheduled'
end
local ann = m[6] or ''
local tn = tonumber(m[7] or '0')
-- The window as last announced: a countdown moved by an open (or a new start time) is told
-- again, or pages would count to the old start. (Absent: announced before this was kept.)
local window = string.format('%d|%d', start_ms, end_ms)
local moved = cur == 'countdown' and ann == 'countdown' and m[8] and m[8] ~= window
-- buy.lua flags a sell-out: one undone by a cancel or an expiry before this look is still told.
local sold_out_unseen = m[9] and cur == 'open' and ann ~= 'sold_out'
if m[9] then redis.call('HDEL', KEYS[1], 'so') end
if (cur ~= ann or moved or sold_out_unseen) and ann ~= 'closed' then
  local phases
  if sold_out_unseen then
    phases = (ann == 'open') and {'sold_out', 'restocked'} or {'opened', 'sold_out', 'restocked'}
  elseif cur == 'open' then
    phases = {(ann == 'sold_out') and 'restocked' or 'opened'}
  elseif cur == 'sold_out' and ann ~= 'open' then
    -- It opened and sold out between two looks: a viewer still hears that it opened.
    phases = {'opened', 'sold_out'}
  else
    phases = {cur}
  end
  for _, phase in ipairs(phases) do
    tn = tn + 1
    -- %d: concatenating a number past 14 digits (an end of 2^50) would print it as a float.
    -- A sell-out told late still says 0 left: that was its moment's stock.
    local left = (phase == 'sold_out') and 0 or remaining
    redis.call('RPUSH', KEYS[2], string.format('%d|%s|%s|%d|%d|%d|%d', tn, phase, state,
      start_ms, end_ms, left, now))
  end
  redis.call('LTRIM', KEYS[2], -32, -1)
  redis.call('HSET', KEYS[1], 'ann', cur, 'tn', tn, 'ann_w', window)
end
local next_ms = -1
if cur == 'countdown' then
  next_ms = start_ms - now
elseif cur ~= 'closed' and end_ms < 1125899906842624 then  -- 2^50: no end time yet
  next_ms = end_ms - now
end
local out = {m[5] or '', tn, next_ms}
local known = tonumber(ARGV[1])
if tn > known then
  for _, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    if tonumber(string.match(entry, '^(%d+)|')) > known then out[#out + 1] = entry end
  end
end
return out
