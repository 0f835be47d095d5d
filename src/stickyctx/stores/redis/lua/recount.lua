-- KEYS: meta, messages   ARGV: encoding, expected_version, total, cum, items...
-- -> new version, or false when the session changed since expected_version
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[2] then return false end
redis.call('DEL', KEYS[2])
for i = 5, #ARGV, 500 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('HSET', KEYS[1], 'enc', ARGV[1], 't', ARGV[3], 'c', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'rv', 1)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
stamp(KEYS[1])
return redis.call('HINCRBY', KEYS[1], 'v', 1)
