-- Set or delete one memory item, refusing to go over the principal's token ceiling.
-- KEYS: memory. ARGV: name, item JSON ('' deletes), tokens of the item, max_tokens, ttl_ms.
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
local total = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then total = total + tonumber(cjson.decode(all[i + 1])['t']) end
end
if total > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
