-- KEYS: meta, messages
-- ARGV: text, tokens, watermark, expected_watermark, delete_folded (0/1)
-- -> {summary_version} when applied, {} when the watermark moved (compare-and-set failed)
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local current = tonumber(redis.call('HGET', KEYS[1], 'sw') or '0')
local watermark = tonumber(ARGV[3])
if current ~= tonumber(ARGV[4]) or watermark <= current then return {} end
local sv = redis.call('HINCRBY', KEYS[1], 'sv', 1)
redis.call('HSET', KEYS[1], 'sum', ARGV[1], 'sw', watermark, 'st', ARGV[2])
if ARGV[5] == '1' then
  local removed = false
  while true do
    local first = redis.call('LINDEX', KEYS[2], 0)
    if not first then break end
    local seq, _, _, tokens, size = header(first)
    if seq > watermark then break end
    redis.call('LPOP', KEYS[2])
    redis.call('HINCRBY', KEYS[1], 't', -tokens)
    redis.call('HINCRBY', KEYS[1], 'b', -size)
    removed = true
  end
  if removed then redis.call('HINCRBY', KEYS[1], 'rv', 1) end
end
stamp(KEYS[1])
redis.call('HINCRBY', KEYS[1], 'v', 1)
return {sv}
