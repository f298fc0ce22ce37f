-- permit.lua: traffic-mode half-open. Grants the one probe permit of the
-- current half-open window (gen, epoch) to the first agent that asks,
-- cluster-wide. The permit holds the epoch, the agent and the SHA-1 of a
-- nonce only that agent knows: its verdict (report.lua) must show the
-- nonce, so no one else can decide the window.
-- KEYS and ARGV[1..19]: see common.lua. The asking agent may not know the
-- breaker's policy yet, so the permit follows the policy the coordinators
-- stored (its mode and probe_timeout), and the ARGV policy only when none
-- is stored.
-- ARGV[20] epoch the agent saw  ARGV[21] agent id  ARGV[22] gen the agent
-- saw  ARGV[23] nonce
-- Returns reply() (common.lua): code 3 granted, 0 refused (not half-open in
-- that window, the window's permit was granted already, or the breaker's
-- mode is not traffic).

local epoch, agent, gen, nonce = tonumber(ARGV[OWN]), ARGV[OWN + 1], ARGV[OWN + 2], ARGV[OWN + 3]
local s = load()
if s.fresh or s.override ~= '' or s.state ~= 'half_open' or s.epoch ~= epoch or s.gen ~= gen or nonce == '' then
  return reply(s, 0)
end
-- One permit per window: once granted (permit_at), a permit that expired
-- unused is not granted again; the timer starts a new window probe_timeout
-- after the grant (tick.lua).
if s.permit_at > 0 then
  return reply(s, 0)
end
local mode, ttl = 'traffic', P.probe_timeout_ms
local stored = redis.call('HGET', KEYS[1], 'policy')
if stored then
  local ok, pol = pcall(cjson.decode, stored)
  if ok and type(pol) == 'table' then
    mode = pol.half_open
    -- Go encodes durations in nanoseconds.
    ttl = math.floor((tonumber(pol.probe_timeout) or 0) / 1e6)
  end
end
if mode ~= 'traffic' then
  return reply(s, 0)
end
if ttl <= 0 then
  ttl = 30000
end
local holder = redis.call('SET', KEYS[4], fmt(s.epoch) .. ':' .. agent .. ':' .. redis.sha1hex(nonce), 'NX', 'PX', ttl)
if holder then
  redis.call('HSET', KEYS[1], 'permit_at', fmt(NOW))
  return reply(s, 3)
end
return reply(s, 0)
