-- KEYS: lease, fence counter   ARGV: holder, ttl_ms, absolute_ms
-- -> fencing token (strictly increasing per session), or false when the lease is held
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], token .. '|' .. ARGV[1], 'PX', ARGV[2])
return token
