-- forget.lua: delete a breaker's state: an operator's delete, or the
-- retention expiry of a breaker no agent reported for a long time.
-- KEYS[1..4] and ARGV[1..19]: see common.lua.
-- KEYS[5] <prefix>:{NAME}:failers
-- ARGV[20] "delete" or "expire"  ARGV[21] retention ms (expire only)
-- ARGV[22] reason
-- expire applies only when no report arrived (seen_at) and nothing
-- changed (changed_at) for the retention, and no override is in effect:
-- an operator's override stands. The state, window, permit and quorum
-- keys go, and the journal with them; the per-agent sequence keys and
-- probe locks expire by themselves. The last event (deleted, expired) is
-- journaled and published with the state agents are left with: closed,
-- version 0, no gen, as if never written. A breaker with no state at all
-- goes silently.
-- Returns reply() (common.lua): code 1 deleted with an event, 4 deleted
-- silently, 0 kept (expire only).

local mode, retention, reason = ARGV[OWN], tonumber(ARGV[OWN + 1]), ARGV[OWN + 2]
local s = load()
local seen = tonumber(redis.call('HGET', KEYS[1], 'seen_at')) or 0
if mode == 'expire' then
  if s.override ~= '' or NOW - math.max(seen, s.changed_at) < retention then
    return reply(s, 0)
  end
end
local old = effective(s)
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5])
local gone = {
  state = 'closed', override = '', override_until = 0, version = 0, epoch = 0,
  consec = 0, open_until = 0, gen = '', last_error = '', reason = reason,
  actor = ACTOR, changed_at = NOW,
}
if s.fresh and seen == 0 then
  redis.call('DEL', KEYS[2])
  return reply(gone, 4)
end
local event = 'deleted'
if mode == 'expire' then
  event = 'expired'
end
journal(gone, event, reason, old, 'closed')
redis.call('DEL', KEYS[2])
return reply(gone, 1, { old = old, new = 'closed', event = event })
