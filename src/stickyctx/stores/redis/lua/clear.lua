-- KEYS: meta, messages, turn lease   ARGV: fence
-- -> {'fenced', current} | {'ok', version}   (version 0: no such session)
local ok, current = fence_ok(KEYS[3], ARGV[1])
if not ok then return {'fenced', current} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'ok', 0} end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], 'sum', 'sw', 'sv', 'st')
redis.call('HSET', KEYS[1], 't', 0, 'b', 0, 'g', 0, 'enc', '')
redis.call('HINCRBY', KEYS[1], 'rv', 1)
-- Dedupe keys stay: a late retry of an earlier turn must not come back.
stamp(KEYS[1])
return {'ok', redis.call('HINCRBY', KEYS[1], 'v', 1)}
