-- permit.lua: traffic-mode half-open. Grants the one probe permit of the
-- current half-open epoch to the first agent that asks, cluster-wide.
-- KEYS and ARGV[1..14]: see common.lua.
-- ARGV[15] epoch the agent saw  ARGV[16] agent id
-- Returns reply() (common.lua): code 3 granted, 0 refused (not half-open in
-- that epoch, or the breaker's stored mode is not traffic).

local s = load()
if s.fresh or s.override ~= '' or s.state ~= 'half_open' or s.epoch ~= tonumber(ARGV[15]) then
  return reply(s, 0)
end
-- The mode is the coordinators' (stored with the policy they apply), not
-- the asking agent's, which may not know the policy yet.
local stored = redis.call('HGET', KEYS[1], 'policy')
if stored then
  local ok, pol = pcall(cjson.decode, stored)
  if ok and type(pol) == 'table' and pol.half_open ~= 'traffic' then
    return reply(s, 0)
  end
end
local ttl = P.probe_timeout_ms
if ttl <= 0 then
  ttl = 30000
end
local holder = redis.call('SET', KEYS[4], fmt(s.epoch) .. ':' .. ARGV[16], 'NX', 'PX', ttl)
if holder then
  return reply(s, 3)
end
return reply(s, 0)
