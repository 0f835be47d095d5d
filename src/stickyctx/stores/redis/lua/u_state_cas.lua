-- Compare-and-set one state field. KEYS: state.
-- ARGV: name, value ('' with ARGV[3] == '0' deletes), '1' to set / '0' to delete,
--       '1' to check, '1' if a current value is expected, expected value, ttl_ms.
if ARGV[4] == '1' then
  local current = redis.call('HGET', KEYS[1], ARGV[1])
  if ARGV[5] == '1' then
    if current ~= ARGV[6] then return 0 end
  elseif current then
    return 0
  end
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
