-- unregister.lua: remove breaker names from the registry and give each
-- back to the agent that registered it. KEYS as register.lua's.
-- ARGV[1..] the names. Returns how many were registered.

local n = 0
for i = 1, #ARGV do
  if redis.call('SREM', KEYS[1], ARGV[i]) == 1 then
    n = n + 1
  end
  local owner = redis.call('HGET', KEYS[2], ARGV[i])
  if owner then
    redis.call('HDEL', KEYS[2], ARGV[i])
    if redis.call('HINCRBY', KEYS[3], owner, -1) <= 0 then
      redis.call('HDEL', KEYS[3], owner)
    end
  end
end
return n
