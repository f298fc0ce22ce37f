-- probe_start.lua: a coordinator holding the probe lock of a half-open
-- window claims it before running its canary. The token (the lock's
-- random value) fences the result: probe.lua applies only the result of
-- the window's claimant, so a coordinator that stalled past its lock's
-- expiry cannot overwrite what its successor found.
-- KEYS and ARGV[1..19]: see common.lua.
-- ARGV[20] epoch  ARGV[21] token  ARGV[22] claim ttl ms (the lock's expiry)
-- A window claimed by another prober less than the claim ttl ago is
-- refused. One claimed longer ago lost its prober (crashed or stalled, its
-- lock expired, no result): that window ends without a verdict and a new
-- one begins (a half_open transition, reason prober_lost), claimed by the
-- caller, so no window ever sees two canaries.
-- Returns reply() (common.lua): code 3 claimed (journals probe_started;
-- the reply's epoch is the window claimed), 0 refused.

local epoch, token, claim_ttl = tonumber(ARGV[OWN]), ARGV[OWN + 1], tonumber(ARGV[OWN + 2])
local s = load()
if s.fresh or s.override ~= '' or s.state ~= 'half_open' or s.epoch ~= epoch then
  return reply(s, 0)
end
if s.probe_owner ~= '' and s.probe_owner ~= token then
  if NOW - s.probe_started_at < claim_ttl then
    return reply(s, 0)
  end
  local old = effective(s)
  new_window(s)
  commit(s, old, 'half_open', 'prober_lost')
end
s.probe_owner = token
s.probe_started_at = NOW
redis.call('HSET', KEYS[1], 'probe_owner', s.probe_owner, 'probe_started_at', fmt(NOW))
local eff = effective(s)
journal(s, 'probe_started', 'epoch ' .. fmt(s.epoch), eff, eff)
return reply(s, 3)
