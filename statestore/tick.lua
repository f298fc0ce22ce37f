-- tick.lua: the coordinators' timer, idempotent however many call it.
-- KEYS and ARGV[1..19]: see common.lua. No arguments of its own.
-- Moves open -> half_open once the open time has passed (a new epoch);
-- starts a new epoch when a window's probe began (a permit was granted,
-- or a canary claimed it) and gave no result within probe_timeout; ends an
-- override whose ttl has passed. A half-open window nobody probes stays
-- as it is: an idle breaker writes nothing.
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
  new_window(s)
  return commit(s, old, 'half_open', 'open_timeout_elapsed')
end

if s.state == 'half_open' and P.probe_timeout_ms > 0 then
  local began = s.permit_at
  if s.probe_owner ~= '' and s.probe_started_at > began then
    began = s.probe_started_at
  end
  if began > 0 and NOW >= began + P.probe_timeout_ms then
    local old = effective(s)
    new_window(s)
    return commit(s, old, 'half_open', 'probe_timed_out')
  end
end

return reply(s, 0)
