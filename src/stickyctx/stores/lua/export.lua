-- KEYS: meta, messages, dedupe, turn lease, summary lease
-- -> {version, pttl, dump(meta), dump(messages) or '', dump(dedupe) or '', lease..., } or {}
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local out = {redis.call('HGET', KEYS[1], 'v'), redis.call('PTTL', KEYS[1])}
for i = 1, 5 do
  local dump = redis.call('DUMP', KEYS[i])
  out[#out + 1] = dump or ''
  out[#out + 1] = dump and redis.call('PTTL', KEYS[i]) or 0
end
return out
