-- probe_start.lua: a coordinator holding the probe lock of a half-open
-- window claims it before running its canary. The token (the lock's
-- random value) fences the result: probe.lua applies only the result of
-- the window's latest claimant, so a coordinator that stalled past its
-- lock's expiry cannot overwrite what its successor found.
-- KEYS and ARGV[1..14]: see common.lua.
-- ARGV[15] epoch  ARGV[16] token
-- Returns reply() (common.lua): code 3 claimed (journals probe_started),
-- 0 when the window is over or not a canary window.

local s = load()
if s.fresh or s.override ~= '' or s.state ~= 'half_open' or s.epoch ~= tonumber(ARGV[15]) then
  return reply(s, 0)
end
s.probe_owner = ARGV[16]
redis.call('HSET', KEYS[1], 'probe_owner', s.probe_owner)
local eff = effective(s)
journal(s, 'probe_started', 'epoch ' .. fmt(s.epoch), eff, eff)
return reply(s, 3)
