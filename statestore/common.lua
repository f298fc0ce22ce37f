-- common.lua: helpers shared by every statestore script. The Go side
-- prepends this file to each script's own file before loading it, so every
-- script still runs as one atomic unit and touches one breaker's keys only.
--
-- KEYS (the same for every script; all share the breaker's hash tag):
--   KEYS[1] state hash    <prefix>:{NAME}:state
--   KEYS[2] event stream  <prefix>:{NAME}:events
--   KEYS[3] window hash   <prefix>:{NAME}:window  (rolling 1 s buckets)
--   KEYS[4] permit key    <prefix>:{NAME}:permit  (traffic-mode probe permit)
-- (report.lua takes three more, see there.)
-- ARGV (the same leading 19 for every script):
--   ARGV[1] breaker name
--   ARGV[2] how transitions are published: "PUBLISH <prefix>:changes" (one
--           channel for every breaker) or "SPUBLISH <prefix>:{NAME}:changes"
--           (the breaker's own shard channel, in its hash tag: Redis Cluster)
--   ARGV[3] event stream cap    ARGV[4] actor (who asks for this change)
--   ARGV[5] consecutive_failures (0 = off)
--   ARGV[6] failure_rate percent (0 = off)   ARGV[7] min_calls
--   ARGV[8] window seconds                   ARGV[9] slow_call_rate percent (0 = off)
--   ARGV[10] open_timeout ms    ARGV[11] max_open_timeout ms
--   ARGV[12] honor_retry_after (1/0)         ARGV[13] probe_timeout ms
--   ARGV[14] policy JSON, stored for agents' local breakers
--   ARGV[15] max_retry_after ms  ARGV[16] min_agents (quorum; 0/1 = off)
--   ARGV[17] half_open mode (canary/traffic)
--   ARGV[18] canary_interval ms  ARGV[19] canary_max_interval ms
-- Each script's own arguments start at ARGV[20].
--
-- Every script returns reply(): {code, state, override, version, epoch,
-- retry_in_ms, gen, old, new, event, reason, failure_count, last_error,
-- actor, changed_at_ms, applied, probe, local_open_ms}, all strings. code:
-- 0 no change, 1 transition, 2 stale (fenced out), 3 granted (permit).
-- applied/probe/local_open_ms say what report.lua did with a batch.

local NAME = ARGV[1]
local PUBLISH, CHANNEL = string.match(ARGV[2], '^(S?PUBLISH) (.+)$')
local EVENTS_CAP = ARGV[3]
local ACTOR = ARGV[4]
local P = {
  threshold = tonumber(ARGV[5]),
  rate = tonumber(ARGV[6]),
  min_calls = tonumber(ARGV[7]),
  window = tonumber(ARGV[8]),
  slow_rate = tonumber(ARGV[9]),
  open_ms = tonumber(ARGV[10]),
  max_open_ms = tonumber(ARGV[11]),
  honor_retry_after = ARGV[12] == '1',
  probe_timeout_ms = tonumber(ARGV[13]),
  json = ARGV[14],
  max_retry_after_ms = tonumber(ARGV[15]),
  min_agents = tonumber(ARGV[16]),
  canary = ARGV[17] == 'canary',
  canary_ms = tonumber(ARGV[18]),
  canary_max_ms = tonumber(ARGV[19]),
}
local OWN = 20

local function fmt(n)
  return string.format('%.0f', n)
end

-- The one clock: Redis's own.
local T = redis.call('TIME')
local NOW = tonumber(T[1]) * 1000 + math.floor(tonumber(T[2]) / 1000)
local NOW_ID = T[1] .. '.' .. T[2]

local function load()
  local h = redis.call('HGETALL', KEYS[1])
  local r = {}
  for i = 1, #h, 2 do
    r[h[i]] = h[i + 1]
  end
  return {
    fresh = r.state == nil,
    state = r.state or 'closed',
    override = r.override or '',
    override_until = tonumber(r.override_until) or 0,
    version = tonumber(r.version) or 0,
    epoch = tonumber(r.epoch) or 0,
    consec = tonumber(r.consec) or 0,
    open_until = tonumber(r.open_until) or 0,
    open_ms = tonumber(r.open_ms) or P.open_ms,
    half_open_at = tonumber(r.half_open_at) or 0,
    gen = r.gen or NOW_ID,
    last_error = r.last_error or '',
    reason = r.reason or '',
    actor = r.actor or '',
    changed_at = tonumber(r.changed_at) or 0,
    probe_owner = r.probe_owner or '',
    probe_started_at = tonumber(r.probe_started_at) or 0,
    permit_at = tonumber(r.permit_at) or 0,
    run_start = tonumber(r.run_start) or 0,
  }
end

-- base_open_ms is the first open time after a trip: the canary cadence
-- for canary-mode breakers, the open timeout for traffic mode.
local function base_open_ms()
  if P.canary then
    return P.canary_ms
  end
  return P.open_ms
end

local function max_open_ms()
  if P.canary then
    return P.canary_max_ms
  end
  return P.max_open_ms
end

local function effective(s)
  if s.override ~= '' then
    return 'forced_' .. s.override
  end
  return s.state
end

local function retry_in(s)
  if s.override == 'open' then
    if s.override_until > 0 then
      return math.max(s.override_until - NOW, 0)
    end
    return -1
  end
  if s.override == '' and s.state == 'open' then
    return math.max(s.open_until - NOW, 0)
  end
  return 0
end

local function save(s)
  redis.call('HSET', KEYS[1],
    'state', s.state, 'override', s.override,
    'override_until', fmt(s.override_until), 'version', fmt(s.version),
    'epoch', fmt(s.epoch), 'consec', fmt(s.consec),
    'open_until', fmt(s.open_until), 'open_ms', fmt(s.open_ms),
    'permit_at', fmt(s.permit_at), 'run_start', fmt(s.run_start),
    'half_open_at', fmt(s.half_open_at), 'gen', s.gen,
    'last_error', s.last_error, 'reason', s.reason, 'actor', s.actor,
    'changed_at', fmt(s.changed_at), 'probe_owner', s.probe_owner,
    'probe_started_at', fmt(s.probe_started_at), 'policy', P.json)
end

-- X collects what report.lua did with a batch, for reply().
local X = { applied = '', probe = '', local_open_ms = 0 }

local function reply(s, code, ev)
  ev = ev or {}
  return {
    tostring(code), s.state, s.override, fmt(s.version), fmt(s.epoch),
    fmt(retry_in(s)), s.gen, ev.old or '', ev.new or '', ev.event or '',
    s.reason, fmt(s.consec), s.last_error, s.actor, fmt(s.changed_at),
    X.applied, X.probe, fmt(X.local_open_ms),
  }
end

-- journal appends one event to the breaker's capped stream and publishes
-- it with the breaker's current state, so live listeners (agents, the
-- admin event stream) see it with its stream id. The published event has
-- the stream entry's fields, as strings, plus its id. It goes out with
-- PUBLISH on the one channel, or with SPUBLISH on the breaker's shard
-- channel, which lives in the same slot as its keys (ARGV[2]).
local function journal(s, event, reason, old, new)
  local open_for = 0
  if s.override == '' and s.state == 'open' then
    open_for = math.max(s.open_until - NOW, 0)
  end
  local fields = {
    'event', event, 'breaker', NAME, 'old_state', old, 'new_state', new,
    'version', fmt(s.version), 'reason', reason,
    'failure_count', fmt(s.consec), 'last_error', s.last_error,
    'actor', ACTOR, 'ts', fmt(NOW), 'open_for_ms', fmt(open_for),
  }
  local ev = { id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', EVENTS_CAP, '*', unpack(fields)) }
  for i = 1, #fields, 2 do
    ev[fields[i]] = fields[i + 1]
  end
  redis.call(PUBLISH, CHANNEL, cjson.encode({
    name = NAME, state = s.state, override = s.override,
    version = s.version, epoch = s.epoch, gen = s.gen,
    retry_in_ms = retry_in(s), event = ev,
  }))
end

-- commit records a transition the caller has already applied to s: it bumps
-- the version, saves, journals the event and publishes the new state.
local function commit(s, old, event, reason)
  s.version = s.version + 1
  s.reason = reason
  s.actor = ACTOR
  s.changed_at = NOW
  s.probe_owner = ''
  save(s)
  local new = effective(s)
  journal(s, event, reason, old, new)
  return reply(s, 1, { old = old, new = new, event = event })
end

-- close_fresh closes the breaker with fresh counters.
local function close_fresh(s)
  s.state = 'closed'
  s.consec = 0
  s.run_start = 0
  s.open_until = 0
  s.open_ms = base_open_ms()
  s.permit_at = 0
  s.last_error = ''
  redis.call('DEL', KEYS[3], KEYS[4])
end

-- open_for opens the breaker for ms milliseconds from now.
local function open_for(s, ms)
  s.state = 'open'
  s.open_until = NOW + ms
  s.permit_at = 0
  redis.call('DEL', KEYS[3], KEYS[4])
end

-- new_window starts a new half-open window (epoch).
local function new_window(s)
  s.state = 'half_open'
  s.epoch = s.epoch + 1
  s.half_open_at = NOW
  s.permit_at = 0
  redis.call('DEL', KEYS[4])
end

-- retry_after returns how long a Retry-After keeps the cluster off (0 for
-- none or when not honoured) and whether max_retry_after capped it.
local function retry_after(ms)
  if not P.honor_retry_after or ms <= 0 then
    return 0, false
  end
  if ms > P.max_retry_after_ms then
    return P.max_retry_after_ms, true
  end
  return ms, false
end

local function retry_after_reason(capped)
  if capped then
    return 'retry_after_capped'
  end
  return 'retry_after'
end

-- probe_result applies the result of the half-open probe. The caller has
-- checked that it belongs to the current half-open epoch and prober.
local function probe_result(s, success, err, retry_after_ms)
  local old = effective(s)
  if success then
    close_fresh(s)
    return commit(s, old, 'probe_succeeded', 'probe_succeeded')
  end
  s.open_ms = math.min(math.max(s.open_ms, base_open_ms()) * 2, max_open_ms())
  s.last_error = err
  local ra, capped = retry_after(retry_after_ms)
  local reason = 'probe_failed'
  if ra > s.open_ms then
    reason = 'probe_failed_' .. retry_after_reason(capped)
  end
  open_for(s, math.max(s.open_ms, ra))
  return commit(s, old, 'probe_failed', reason)
end
