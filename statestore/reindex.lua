-- reindex.lua: rebuild the registry's index from its set, for a registry
-- that names were added to or removed from without it (by a version that
-- kept no index, or by hand), and log that everything may have changed.
-- KEYS as register.lua's. ARGV[1] how many generations the log keeps.
-- Returns {rebuilt, generation}: rebuilt 0 when the set and the index
-- have the same size already (another coordinator rebuilt it). The log's
-- entry "<gen> *" tells readers to read the whole registry again.

local keep = tonumber(ARGV[1])
if redis.call('SCARD', KEYS[1]) == redis.call('ZCARD', KEYS[4]) then
  return {0, tonumber(redis.call('GET', KEYS[5])) or 0}
end
redis.call('DEL', KEYS[4])
local names = redis.call('SMEMBERS', KEYS[1])
local args = {}
for i, n in ipairs(names) do
  args[#args + 1] = 0
  args[#args + 1] = n
  if #args >= 1000 or i == #names then
    redis.call('ZADD', KEYS[4], unpack(args))
    args = {}
  end
end
local gen = redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[6], gen, gen .. ' *')
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', gen - keep)
return {1, gen}
