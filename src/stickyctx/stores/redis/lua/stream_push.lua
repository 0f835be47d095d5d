-- KEYS: stream record, stream chunks, turn lease
-- ARGV: stream id, ttl_ms, fence ('' = none), lease_ms, chunks...
-- -> 1 when the generator should stop (asked to, or the stream is not current and running:
-- nothing appended then), else 0. Extends the turn lease the fence holds.
local r = redis.call('HMGET', KEYS[1], 'id', 'st', 'x')
if r[1] ~= ARGV[1] or r[2] ~= 'running' then return 1 end
if #ARGV > 4 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 5))
  redis.call('HINCRBY', KEYS[1], 'c', #ARGV - 4)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local lease_ms = tonumber(ARGV[4])
if ARGV[3] ~= '' and lease_ms > 0 and fence_ok(KEYS[3], ARGV[3]) then
  if redis.call('PTTL', KEYS[3]) < lease_ms then redis.call('PEXPIRE', KEYS[3], lease_ms) end
end
if r[3] == '1' then return 1 end
return 0
