-- KEYS: members (zset: node id -> expiry ms), info (hash: node id -> "address|load")
-- ARGV: node_id, ttl_ms, address, load, leaving (0/1)
-- -> {id1, info1, id2, info2, ...} of the live members, this node included unless leaving
local now = now_ms()
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[5] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. '|' .. ARGV[4])
end
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local alive = {}
local out = {}
for _, id in ipairs(live) do
  alive[id] = true
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or '|0'
end
for _, id in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not alive[id] then redis.call('HDEL', KEYS[2], id) end
end
redis.call('PEXPIRE', KEYS[1], ttl * 10)
redis.call('PEXPIRE', KEYS[2], ttl * 10)
return out
