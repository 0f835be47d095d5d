-- KEYS: index. ARGV: conversation id.
return redis.call('ZREM', KEYS[1], ARGV[1])
