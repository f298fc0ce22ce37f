-- release.lua: end an operator override. The breaker resumes closed with
-- fresh counters.
-- KEYS and ARGV[1..19]: see common.lua.  ARGV[20] reason
-- Returns reply() (common.lua): code 1, or 0 when it was not forced.

local s = load()
if s.override == '' then
  return reply(s, 0)
end
local old = effective(s)
s.override = ''
s.override_until = 0
close_fresh(s)
return commit(s, old, 'release', ARGV[OWN])
