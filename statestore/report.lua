-- report.lua: apply one agent's report for one breaker (docs/protocol.md).
-- KEYS[1..4] and ARGV[1..19]: see common.lua; ARGV[4] is the agent.
-- KEYS[5] <prefix>:{NAME}:seq:<agent>    the agent's last (boot, seq)
-- KEYS[6] <prefix>:{NAME}:failers        agents that failed, by time (quorum)
-- KEYS[7] <prefix>:{NAME}:local:<agent>  set while that agent is told to
--                                        open its own breaker (quorum)
-- ARGV[20] boot ('' = no repeat check)  ARGV[21] seq
-- ARGV[22] fenced (1: count only against gen/version below; 0: against
--          whatever state is current)
-- ARGV[23] gen  ARGV[24] version: the state the calls were allowed under
-- ARGV[25] ok  ARGV[26] fail  ARGV[27] trailing_fail  ARGV[28] slow
-- ARGV[29] last_ok_age_ms  ARGV[30] hung  ARGV[31] hung waiting
-- ARGV[32] hung oldest ms  ARGV[33] retry_after_ms  ARGV[34] last_error
-- ARGV[35] probe epoch (0 = none)  ARGV[36] probe gen  ARGV[37] probe ok
-- ARGV[38] probe error  ARGV[39] probe retry_after_ms  ARGV[40] probe
-- nonce  ARGV[41] probe release (1/0)  ARGV[42] misconfigured (failures
-- for the callers' credentials: 401, 403)  ARGV[43] misconfigured_open ms
-- Always (8. below, whatever the policy), the batch's calls and failures
-- go into a per-second count of the last 60 s in KEYS[1], fields rs, rc,
-- rf, rb, rh (statestore/rates.go reads them).
-- Returns reply() (common.lua); code 1 when the batch made a transition;
-- applied is applied, duplicate or stale; probe is applied, released or
-- refused when the batch carried one; local_open_ms > 0 tells the agent to
-- open its own breaker (quorum not met).

local A = function(i) return ARGV[OWN + i] end
local boot, seq = A(0), tonumber(A(1))
local fenced, gen, version = A(2) == '1', A(3), tonumber(A(4))
local ok, fail, trailing, slow = tonumber(A(5)), tonumber(A(6)), tonumber(A(7)), tonumber(A(8))
local last_ok_age = tonumber(A(9))
local hung, hung_waiting, hung_oldest = tonumber(A(10)), tonumber(A(11)), tonumber(A(12))
local retry_after_ms, last_error = tonumber(A(13)), A(14)
local probe_epoch = tonumber(A(15))
local misconfigured, misconfigured_open = tonumber(A(22)), tonumber(A(23))

local s = load()
-- When an agent last reported this breaker: the retention expiry keeps
-- what agents still report.
redis.call('HSET', KEYS[1], 'seen_at', fmt(NOW))

-- 1. A report seen before (resent after a lost answer) counts once.
if boot ~= '' then
  local last = redis.call('GET', KEYS[5])
  if last then
    local lb, ls = string.match(last, '^(%S+) (%d+)$')
    if lb == boot and tonumber(ls) >= seq then
      X.applied = 'duplicate'
      return reply(s, 0)
    end
  end
  redis.call('SET', KEYS[5], boot .. ' ' .. fmt(seq), 'PX', 600000)
end
X.applied = 'applied'

-- 8. Always, whatever the policy and the state (a stale or forced part's
-- calls reached the provider too): the calls and failures agents report,
-- per second, for the dashboard. rs is the current second, rc and rf its
-- calls and failures; rh holds the seconds rb .. rs - 1 (at most 59),
-- oldest first, as "calls,failures" words, "0,0" for a quiet second. Two
-- commands in the same second; a few string operations when it turns.
-- It reads and changes nothing the rules below use.
local function record_rate(calls, fails)
  local sec = math.floor(NOW / 1000)
  local r = redis.call('HMGET', KEYS[1], 'rs', 'rc', 'rf', 'rb', 'rh')
  local rs = tonumber(r[1])
  if rs ~= nil and sec <= rs then
    redis.call('HSET', KEYS[1], 'rc', fmt((tonumber(r[2]) or 0) + calls), 'rf', fmt((tonumber(r[3]) or 0) + fails))
    return
  end
  local rb, rh = sec, ''
  if rs ~= nil and sec - rs < 60 then
    rb, rh = tonumber(r[4]) or rs, r[5] or ''
    local add = fmt(tonumber(r[2]) or 0) .. ',' .. fmt(tonumber(r[3]) or 0) .. string.rep(' 0,0', sec - rs - 1)
    if rh == '' then
      rh = add
    else
      rh = rh .. ' ' .. add
    end
    local drop = sec - 59 - rb
    if drop > 0 then
      local at = 0
      for _ = 1, drop do
        at = string.find(rh, ' ', at + 1, true)
        if at == nil then
          break
        end
      end
      if at == nil then
        rb, rh = sec, ''
      else
        rb, rh = rb + drop, string.sub(rh, at + 1)
      end
    end
  end
  redis.call('HSET', KEYS[1], 'rs', fmt(sec), 'rc', fmt(calls), 'rf', fmt(fails), 'rb', fmt(rb), 'rh', rh)
end
if ok + fail + hung > 0 then
  record_rate(ok + fail + hung, fail + hung)
end

-- 2. The traffic-mode probe's verdict, from the holder of the window's
-- permit only. It decides the window; the rest of the batch predates it.
if probe_epoch > 0 then
  local holder = redis.call('GET', KEYS[4])
  if s.override == '' and s.state == 'half_open' and s.epoch == probe_epoch and s.gen == A(16)
      and A(20) ~= '' and holder == fmt(probe_epoch) .. ':' .. ACTOR .. ':' .. redis.sha1hex(A(20)) then
    if A(21) == '1' then
      X.probe = 'released'
      local old = effective(s)
      new_window(s)
      return commit(s, old, 'half_open', 'probe_released')
    end
    X.probe = 'applied'
    return probe_result(s, A(17) == '1', A(18), math.max(tonumber(A(19)), retry_after_ms))
  end
  X.probe = 'refused'
end

-- 3. The fence: outcomes count only against the state they were allowed
-- under. Before any transition (version 0) there is one closed state,
-- whatever incarnation wrote it first.
local current = true
if fenced then
  current = version == s.version and (version == 0 or gen == s.gen)
end
if not current then
  X.applied = 'stale'
end

if s.override ~= '' then
  -- Forced either way: outcomes never trip a forced breaker.
  return reply(s, 0)
end

if s.state == 'open' then
  -- Late outcomes of calls that were in flight when it tripped. A longer
  -- Retry-After extends the open time, for everyone: a transition. One
  -- that moves the deadline by a second or less is the same wish heard
  -- again (every call in flight hears it, a few ms apart): no transition.
  local EXTEND_SLACK_MS = 1000
  local ra, capped = retry_after(retry_after_ms)
  if ra > 0 and NOW + ra > s.open_until + EXTEND_SLACK_MS and (not fenced or gen == s.gen) then
    s.open_until = NOW + ra
    if last_error ~= '' then
      s.last_error = last_error
    end
    return commit(s, 'open', 'extend', retry_after_reason(capped))
  end
  return reply(s, 0)
end

if s.state ~= 'closed' or not current then
  -- Half-open: only the probe decides. Stale: about a state that is gone.
  return reply(s, 0)
end

local failed = fail + hung
if failed > 0 then
  if last_error ~= '' then
    s.last_error = last_error
  elseif hung > 0 then
    s.last_error = string.format('%d calls waiting for a first byte past hang_after (oldest %d ms)', hung_waiting, hung_oldest)
  end
end

-- 4. Consecutive failures since the last success anywhere in the cluster.
-- A success that completed before the current run of failures began
-- (batched successes arrive late) does not end it. Hung calls came last.
local was = s.consec
local reset = ok > 0 and not (was > 0 and NOW - last_ok_age < s.run_start)
if reset then
  s.consec = trailing
else
  s.consec = was + fail
end
s.consec = s.consec + hung
if s.consec == 0 then
  s.run_start = 0
elseif reset or was == 0 then
  s.run_start = NOW
end

-- 5. Rolling window of 1 s buckets with running totals, kept only when a
-- rate rule is on. Fields: n, f, sl (totals), lo (oldest live bucket), and
-- <sec>:n, <sec>:f, <sec>:sl per bucket. A hung call is a failure and slow.
local n, f, sl = 0, 0, 0
if P.window > 0 and (P.rate > 0 or P.slow_rate > 0) then
  local sec = math.floor(NOW / 1000)
  local cutoff = sec - P.window + 1
  local w = redis.call('HMGET', KEYS[3], 'n', 'f', 'sl', 'lo')
  n, f, sl = tonumber(w[1]) or 0, tonumber(w[2]) or 0, tonumber(w[3]) or 0
  local lo = tonumber(w[4]) or cutoff
  if cutoff - lo > P.window then
    redis.call('DEL', KEYS[3])
    n, f, sl = 0, 0, 0
  else
    for b = lo, cutoff - 1 do
      local bk = fmt(b)
      local old = redis.call('HMGET', KEYS[3], bk .. ':n', bk .. ':f', bk .. ':sl')
      n = n - (tonumber(old[1]) or 0)
      f = f - (tonumber(old[2]) or 0)
      sl = sl - (tonumber(old[3]) or 0)
      redis.call('HDEL', KEYS[3], bk .. ':n', bk .. ':f', bk .. ':sl')
    end
  end
  local calls = ok + fail + hung
  n, f, sl = n + calls, f + failed, sl + slow + hung
  local bk = fmt(sec)
  redis.call('HINCRBY', KEYS[3], bk .. ':n', calls)
  redis.call('HINCRBY', KEYS[3], bk .. ':f', failed)
  redis.call('HINCRBY', KEYS[3], bk .. ':sl', slow + hung)
  redis.call('HSET', KEYS[3], 'n', fmt(n), 'f', fmt(f), 'sl', fmt(sl), 'lo', fmt(cutoff))
  redis.call('PEXPIRE', KEYS[3], (P.window + 1) * 2000)
end

-- 6. Who failed, for the quorum.
local quorum = P.min_agents > 1
local window_ms = math.max(P.window, 1) * 1000
if quorum and failed > 0 then
  redis.call('ZADD', KEYS[6], NOW, ACTOR)
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', NOW - window_ms)
  redis.call('PEXPIRE', KEYS[6], window_ms * 2)
end

local reason
local open_ms = base_open_ms()
local ra, capped = retry_after(retry_after_ms)
if misconfigured > 0 then
  -- Refused for who called (a key, a permission): it will not heal by
  -- itself in a minute; no quorum either, every caller has the key.
  local old = effective(s)
  s.open_ms = base_open_ms()
  open_for(s, math.max(misconfigured_open, ra))
  return commit(s, old, 'trip', 'misconfigured')
elseif ra > 0 then
  reason = retry_after_reason(capped)
  open_ms = ra
elseif P.threshold > 0 and s.consec >= P.threshold then
  reason = 'consecutive_failures'
elseif P.rate > 0 and n >= P.min_calls and n > 0 and f * 100 >= P.rate * n then
  reason = 'failure_rate'
elseif P.slow_rate > 0 and n >= P.min_calls and n > 0 and sl * 100 >= P.slow_rate * n then
  reason = 'slow_call_rate'
end

if reason == nil then
  save(s)
  return reply(s, 0)
end

-- 7. Quorum: a rule that only fewer than min_agents agents' failures
-- fired opens the reporting agent's own breaker, not the cluster's. (A
-- Retry-After is the provider speaking, not one replica's trouble.)
if quorum and ra == 0 then
  local agents = redis.call('ZCARD', KEYS[6])
  if agents < P.min_agents then
    save(s)
    X.local_open_ms = P.open_ms
    if redis.call('SET', KEYS[7], '1', 'NX', 'PX', P.open_ms) then
      local eff = effective(s)
      journal(s, 'local_trip', reason .. ': ' .. fmt(agents) .. ' of ' .. fmt(P.min_agents) .. ' agents failing', eff, eff)
    end
    return reply(s, 0)
  end
end

local old = effective(s)
s.open_ms = base_open_ms()
open_for(s, open_ms)
return commit(s, old, 'trip', reason)
