-- KEYS: a hash (a principal's memory, a conversation's state). Returns HGETALL.
return redis.call('HGETALL', KEYS[1])
