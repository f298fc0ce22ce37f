-- tick.lua: the coordinators' timer, idempotent however many call it.
-- KEYS and ARGV[1..14]: see common.lua. No arguments of its own.
-- Moves open -> half_open once the open time has passed (a new epoch);
-- starts a new epoch when a half-open probe produced no result within
-- probe_timeout; ends an override whose ttl has passed.
-- Returns reply() (common.lua); code 1 when it made a transition.

local s = load()
if s.fresh then
  return reply(s, 0)
end

if s.override ~= '' then
  if s.override_until > 0 and NOW >= s.override_until then
    local old = effective(s)
    s.override = ''
    s.override_until = 0
    close_fresh(s)
    return commit(s, old, 'override_expired', 'ttl')
  end
  return reply(s, 0)
end

if s.state == 'open' and NOW >= s.open_until then
  local old = effective(s)
  s.state = 'half_open'
  s.epoch = s.epoch + 1
  s.half_open_at = NOW
  redis.call('DEL', KEYS[4])
  return commit(s, old, 'half_open', 'open_timeout_elapsed')
end

if s.state == 'half_open' and P.probe_timeout_ms > 0 and NOW >= s.half_open_at + P.probe_timeout_ms then
  local old = effective(s)
  s.epoch = s.epoch + 1
  s.half_open_at = NOW
  redis.call('DEL', KEYS[4])
  return commit(s, old, 'half_open', 'probe_timed_out')
end

return reply(s, 0)
