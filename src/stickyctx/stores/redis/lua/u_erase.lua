-- Erase a principal: its index and memory; leave a tombstone. KEYS: index, memory, tombstone.
-- ARGV: ttl_ms. Returns the conversation ids the index held.
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
return ids
