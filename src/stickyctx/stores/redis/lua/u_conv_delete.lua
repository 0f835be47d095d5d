-- Delete a conversation's record and state; tombstone its id.
-- KEYS: record, state, tombstone. ARGV: ttl_ms.
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
return 1
