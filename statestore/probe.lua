-- probe.lua: the result of a canary probe, fenced by the half-open epoch.
-- KEYS and ARGV[1..14]: see common.lua.
-- ARGV[15] epoch the probe ran in  ARGV[16] ok (1/0)  ARGV[17] error
-- ARGV[18] retry_after_ms (from a failed probe's response, 0 = none)
-- ARGV[19] fencing token given to probe_start.lua ('' = no token check)
-- Returns reply() (common.lua); code 1 when applied, 2 when the breaker has
-- moved on (another epoch, closed, forced) or another prober has taken the
-- window over: a late result changes nothing.

local s = load()
if s.fresh or s.override ~= '' or s.state ~= 'half_open' or s.epoch ~= tonumber(ARGV[15]) then
  return reply(s, 2)
end
if ARGV[19] ~= '' and s.probe_owner ~= ARGV[19] then
  return reply(s, 2)
end
return probe_result(s, ARGV[16] == '1', ARGV[17], tonumber(ARGV[18]))
