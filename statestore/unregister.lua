-- unregister.lua: remove breaker names from the registry and give each
-- back to the agent that registered it. KEYS as register.lua's.
-- ARGV[1] how many generations the log keeps  ARGV[2..] the names.
-- Returns how many were registered.

local keep = tonumber(ARGV[1])
local gone = {}
for i = 2, #ARGV do
  if redis.call('SREM', KEYS[1], ARGV[i]) == 1 then
    gone[#gone + 1] = ARGV[i]
  end
  redis.call('ZREM', KEYS[4], ARGV[i])
  local owner = redis.call('HGET', KEYS[2], ARGV[i])
  if owner then
    redis.call('HDEL', KEYS[2], ARGV[i])
    if redis.call('HINCRBY', KEYS[3], owner, -1) <= 0 then
      redis.call('HDEL', KEYS[3], owner)
    end
  end
end
if #gone > 0 then
  local gen = redis.call('INCR', KEYS[5])
  redis.call('ZADD', KEYS[6], gen, gen .. ' - ' .. table.concat(gone, ','))
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', gen - keep)
end
return #gone
