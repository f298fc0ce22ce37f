-- report.lua: apply one agent's outcome batch to one breaker.
-- KEYS and ARGV[1..14]: see common.lua.
-- ARGV[15] ok  ARGV[16] fail  ARGV[17] trailing_fail (failures after the
-- batch's last success)  ARGV[18] slow  ARGV[19] retry_after_ms (largest
-- Retry-After seen, 0 = none)  ARGV[20] last_error
-- ARGV[21] probe epoch (0 = the batch carries no probe result)
-- ARGV[22] probe ok (1/0)  ARGV[23] probe error
-- Returns reply() (common.lua); code 1 when the batch made a transition.

local ok = tonumber(ARGV[15])
local fail = tonumber(ARGV[16])
local trailing = tonumber(ARGV[17])
local slow = tonumber(ARGV[18])
local retry_after = tonumber(ARGV[19])
local last_error = ARGV[20]
local probe_epoch = tonumber(ARGV[21])

local s = load()

-- A traffic-mode probe result for the current half-open epoch decides the
-- breaker; the rest of that batch predates the decision and is dropped.
if probe_epoch > 0 then
  if s.override == '' and s.state == 'half_open' and s.epoch == probe_epoch then
    return probe_result(s, ARGV[22] == '1', ARGV[23], retry_after)
  end
end

if fail > 0 and last_error ~= '' then
  s.last_error = last_error
end

if s.override ~= '' then
  -- Forced either way: outcomes never trip a forced breaker.
  return reply(s, 0)
end

if s.state == 'open' then
  -- Late outcomes of calls that were in flight when it tripped. A longer
  -- Retry-After extends the open time (capped); nothing else changes.
  local ra = capped_retry_after(retry_after)
  if ra > 0 and NOW + ra > s.open_until then
    s.open_until = NOW + ra
  end
  save(s)
  return reply(s, 0)
end

if s.state ~= 'closed' then
  -- Half-open: only the probe decides.
  return reply(s, 0)
end

-- Consecutive failures since the last success anywhere in the cluster.
if ok > 0 then
  s.consec = trailing
else
  s.consec = s.consec + fail
end

-- Rolling window of 1 s buckets with running totals, kept only when a rate
-- rule is on. Fields: n, f, sl (totals), lo (oldest live bucket), and
-- <sec>:n, <sec>:f, <sec>:sl per bucket.
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
  n, f, sl = n + ok + fail, f + fail, sl + slow
  local bk = fmt(sec)
  redis.call('HINCRBY', KEYS[3], bk .. ':n', ok + fail)
  redis.call('HINCRBY', KEYS[3], bk .. ':f', fail)
  redis.call('HINCRBY', KEYS[3], bk .. ':sl', slow)
  redis.call('HSET', KEYS[3], 'n', fmt(n), 'f', fmt(f), 'sl', fmt(sl), 'lo', fmt(cutoff))
  redis.call('PEXPIRE', KEYS[3], (P.window + 1) * 2000)
end

local reason
local open_ms = P.open_ms
local ra = capped_retry_after(retry_after)
if ra > 0 then
  reason = 'retry_after'
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

local old = effective(s)
s.open_ms = P.open_ms
open_for(s, open_ms)
return commit(s, old, 'trip', reason)
