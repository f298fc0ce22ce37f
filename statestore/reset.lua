-- reset.lua: close the breaker with fresh counters and no override.
-- KEYS and ARGV[1..19]: see common.lua.  ARGV[20] reason
-- Returns reply() (common.lua) with code 1.

local s = load()
local old = effective(s)
s.override = ''
s.override_until = 0
close_fresh(s)
return commit(s, old, 'reset', ARGV[OWN])
