-- KEYS: stream record, stream chunks
-- ARGV: after (chunks already seen)
-- -> false without a stream, else {record as JSON, chunks after `after`...}
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local record = {}
for i = 1, #h, 2 do record[h[i]] = h[i + 1] end
local out = {cjson.encode(record)}
local items = redis.call('LRANGE', KEYS[2], tonumber(ARGV[1]), -1)
for i = 1, #items do out[#out + 1] = items[i] end
return out
