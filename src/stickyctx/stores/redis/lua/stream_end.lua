-- KEYS: stream record, stream chunks
-- ARGV: stream id, final status, ttl_ms
-- -> 1 if this call ended the running stream, 0 if it had ended or is not current.
local r = redis.call('HMGET', KEYS[1], 'id', 'st')
if r[1] ~= ARGV[1] or r[2] ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'st', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
