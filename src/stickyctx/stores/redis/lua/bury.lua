-- KEYS: meta, messages, dedupe, turn lease, summary lease, fence, tombstone
-- ARGV: expected_version ('' = unconditional), absolute_ms, follow pointer ('' = none),
--       grace_ms (how long the old id may follow to the new one)
-- The old id of a rotation: deleted and tombstoned only if nothing was written meanwhile.
local v = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] ~= '' and v ~= ARGV[1] then return 0 end
local now = now_ms()
local created = tonumber(redis.call('HGET', KEYS[1], 'cr') or now)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
local tombstone = '1'
if ARGV[3] ~= '' then tombstone = 'F|' .. (now + tonumber(ARGV[4])) .. '|' .. ARGV[3] end
redis.call('SET', KEYS[7], tombstone, 'PXAT', math.max(created + tonumber(ARGV[2]), now + 1000))
return 1
