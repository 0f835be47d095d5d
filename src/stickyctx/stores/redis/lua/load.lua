-- KEYS: meta, messages, dedupe, tombstone
-- ARGV: idle_ms, absolute_ms, known_version, known_rewrite, known_count, refresh_ms,
--       known_write_id, known_last_header (the "seq,group,cum,tokens,size," of item count-1)
-- -> {'revoked'} | {'missing'} | {'same'} | {'tail'|'full', meta as JSON, items...}
if redis.call('EXISTS', KEYS[4]) == 1 then return {'revoked'} end
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return {'missing'} end
local h = {}
for i = 1, #meta, 2 do h[meta[i]] = meta[i + 1] end
local now = now_ms()
if now - tonumber(h.rf or '0') >= tonumber(ARGV[6]) then
  expire_all({KEYS[1], KEYS[2], KEYS[3]}, now, tonumber(h.cr), tonumber(ARGV[1]),
             tonumber(ARGV[2]))
  redis.call('HSET', KEYS[1], 'rf', now)
end
if h.v == ARGV[3] and (h.w or '') == ARGV[7] then return {'same'} end
local kind, items = 'full', nil
local known = tonumber(ARGV[5])
local lines_up = known == 0
if h.rv == ARGV[4] and known > 0 then
  local last = redis.call('LINDEX', KEYS[2], known - 1)
  lines_up = last ~= false and string.sub(last, 1, #ARGV[8]) == ARGV[8]
end
if h.rv == ARGV[4] and known >= 0 and lines_up then
  kind = 'tail'
  items = redis.call('LRANGE', KEYS[2], known, -1)
else
  items = redis.call('LRANGE', KEYS[2], 0, -1)
end
-- The meta travels as one JSON string: one reply element instead of two per field.
local out = {kind, cjson.encode(h)}
for i = 1, #items do out[#out + 1] = items[i] end
return out
