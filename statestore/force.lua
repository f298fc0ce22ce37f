-- force.lua: an operator override. While forced, outcomes never trip the
-- breaker and timers never move it; release.lua or the ttl ends it.
-- KEYS and ARGV[1..14]: see common.lua.
-- ARGV[15] "open" or "closed"  ARGV[16] ttl ms (0 = until released)
-- ARGV[17] reason
-- Returns reply() (common.lua) with code 1.

local s = load()
local old = effective(s)
s.override = ARGV[15]
local ttl = tonumber(ARGV[16])
if ttl > 0 then
  s.override_until = NOW + ttl
else
  s.override_until = 0
end
return commit(s, old, 'force_' .. ARGV[15], ARGV[17])
