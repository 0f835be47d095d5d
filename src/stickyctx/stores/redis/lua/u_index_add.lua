-- Add or move a conversation in a principal's index (activity never goes back).
-- KEYS: index. ARGV: conversation id, activity, ttl_ms.
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(current) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
