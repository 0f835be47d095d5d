-- KEYS: stream record, stream chunks
-- ARGV: stream id, node, turn (idempotency key or ''), ttl_ms
-- The session's current streamed reply becomes this one: running, no chunks.
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'st', 'running', 'n', ARGV[2], 't', ARGV[3],
           'c', 0, 'x', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
