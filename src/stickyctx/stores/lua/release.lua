-- KEYS: lease   ARGV: token
local lease = redis.call('GET', KEYS[1])
if lease and string.match(lease, '^(%d+)|') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
