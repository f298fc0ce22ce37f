-- force.lua: an operator override. While forced, outcomes never trip the
-- breaker and timers never move it; release.lua or the ttl ends it.
-- KEYS and ARGV[1..19]: see common.lua.
-- ARGV[20] "open" or "closed"  ARGV[21] ttl ms (0 = until released)
-- ARGV[22] reason
-- Returns reply() (common.lua) with code 1.

local o, ttl, reason = ARGV[OWN], tonumber(ARGV[OWN + 1]), ARGV[OWN + 2]
local s = load()
local old = effective(s)
s.override = o
if ttl > 0 then
  s.override_until = NOW + ttl
else
  s.override_until = 0
end
return commit(s, old, 'force_' .. o, reason)
