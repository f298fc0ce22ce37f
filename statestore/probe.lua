-- probe.lua: the result of a canary probe, fenced by the half-open epoch
-- and the claimant's token.
-- KEYS and ARGV[1..19]: see common.lua.
-- ARGV[20] epoch the probe ran in  ARGV[21] ok (1/0)  ARGV[22] error
-- ARGV[23] retry_after_ms (from a failed probe's response, 0 = none)
-- ARGV[24] fencing token given to probe_start.lua (required)
-- Returns reply() (common.lua); code 1 when applied, 2 when the breaker has
-- moved on (another epoch, closed, forced) or the window belongs to
-- another prober: a late or forged result changes nothing.

local epoch, token = tonumber(ARGV[OWN]), ARGV[OWN + 4]
local s = load()
if s.fresh or s.override ~= '' or s.state ~= 'half_open' or s.epoch ~= epoch then
  return reply(s, 2)
end
if token == '' or s.probe_owner ~= token then
  return reply(s, 2)
end
return probe_result(s, ARGV[OWN + 1] == '1', ARGV[OWN + 2], tonumber(ARGV[OWN + 3]))
