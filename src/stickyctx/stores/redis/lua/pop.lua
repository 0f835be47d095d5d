-- KEYS: meta, messages, turn lease   ARGV: fence
-- -> {'fenced', current} | {'empty'} | {'ok', version, item}
local ok, current = fence_ok(KEYS[3], ARGV[1])
if not ok then return {'fenced', current} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'empty'} end
local item = redis.call('RPOP', KEYS[2])
if not item then return {'empty'} end
local _, _, _, tokens, size = header(item)
redis.call('HINCRBY', KEYS[1], 't', -tokens)
redis.call('HINCRBY', KEYS[1], 'b', -size)
local last = redis.call('LINDEX', KEYS[2], -1)
local group = 0
if last then
  local _, g = header(last)
  group = g
end
redis.call('HSET', KEYS[1], 'g', group)
redis.call('HINCRBY', KEYS[1], 'rv', 1)
stamp(KEYS[1])
return {'ok', redis.call('HINCRBY', KEYS[1], 'v', 1), item}
