-- Create a conversation record unless one exists or its id is tombstoned.
-- KEYS: record, tombstone. ARGV: ttl_ms, then field, value pairs.
-- Returns false when tombstoned, else the stored record (HGETALL).
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
if redis.call('EXISTS', KEYS[1]) == 0 then
  for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
