-- A page of a principal's index, newest activity first. KEYS: index. ARGV: offset, limit.
local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
if limit <= 0 then return {} end
return redis.call('ZREVRANGE', KEYS[1], offset, offset + limit - 1)
