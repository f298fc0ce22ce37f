-- register.lua: add breaker names to the registry the coordinators' timers
-- walk, within the registration limits. Not a breaker script (no
-- common.lua): its keys are the registry's, all in one Redis Cluster slot
-- (the set's own name is the other two keys' hash tag).
-- KEYS[1] <prefix>:breakers            the registry (a set of names)
-- KEYS[2] {<prefix>:breakers}:owner    name -> the agent that registered it
-- KEYS[3] {<prefix>:breakers}:count    agent -> how many names it registered
-- KEYS[4] {<prefix>:breakers}:index    the same names in a sorted set, every
--                                      score 0: pages by name (ZRANGEBYLEX)
-- KEYS[5] {<prefix>:breakers}:gen      the registry's generation: +1 per change
-- KEYS[6] {<prefix>:breakers}:log      the last changes, member
--                                      "<gen> + <name>,<name>…", score gen
-- ARGV[1] agent ('' = uncounted: configured names, operators)
-- ARGV[2] max names in the registry (0 = no limit; uncounted names pass)
-- ARGV[3] max names per agent (0 = no limit)
-- ARGV[4] the registry's shard channel, {<prefix>:breakers}:registered,
--         on which new names are announced with SPUBLISH (sharded pub/sub:
--         coordinators follow each breaker's own channel and learn new
--         ones here); '' announces nothing (one plain channel carries
--         every breaker's changes)
-- ARGV[5] how many generations the log keeps
-- ARGV[6..] the names
-- Returns {code, current, max}: code 0 registered (or known already),
-- 1 the registry is full, 2 the agent registered its maximum. Nothing
-- is registered unless every new name fits. The announcement is
-- {"names": [...the new ones], "ts": Redis's time in ms}.

local agent, max_total, max_agent = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local fresh = {}
local channel, keep = ARGV[4], tonumber(ARGV[5])
for i = 6, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then
    fresh[#fresh + 1] = ARGV[i]
  end
end
if #fresh == 0 then
  return {0, 0, 0}
end
if agent ~= '' then
  local total = redis.call('SCARD', KEYS[1])
  if max_total > 0 and total + #fresh > max_total then
    return {1, total, max_total}
  end
  local mine = tonumber(redis.call('HGET', KEYS[3], agent)) or 0
  if max_agent > 0 and mine + #fresh > max_agent then
    return {2, mine, max_agent}
  end
end
for _, n in ipairs(fresh) do
  redis.call('SADD', KEYS[1], n)
  redis.call('ZADD', KEYS[4], 0, n)
  if agent ~= '' then
    redis.call('HSET', KEYS[2], n, agent)
  end
end
if agent ~= '' then
  redis.call('HINCRBY', KEYS[3], agent, #fresh)
end
local gen = redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[6], gen, gen .. ' + ' .. table.concat(fresh, ','))
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', gen - keep)
if channel ~= '' then
  local t = redis.call('TIME')
  redis.call('SPUBLISH', channel, cjson.encode({
    names = fresh, ts = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),
  }))
end
return {0, 0, 0}
