-- KEYS: meta   ARGV: old wrapped data key, new wrapped data key (the same key, newest ring key)
if redis.call('HGET', KEYS[1], 'dek') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'dek', ARGV[2])
  return 1
end
return 0
