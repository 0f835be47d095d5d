-- KEYS: record. Returns HGETALL (empty without a record).
return redis.call('HGETALL', KEYS[1])
