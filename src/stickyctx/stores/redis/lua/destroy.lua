-- KEYS: meta, messages, dedupe, turn lease, summary lease, fence, tombstone, stream record,
--       stream chunks (a reply's text: erased with the rest)
-- ARGV: absolute_ms
local now = now_ms()
local created = tonumber(redis.call('HGET', KEYS[1], 'cr') or now)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[8], KEYS[9])
redis.call('SET', KEYS[7], '1', 'PXAT', math.max(created + tonumber(ARGV[1]), now + 1000))
return 1
