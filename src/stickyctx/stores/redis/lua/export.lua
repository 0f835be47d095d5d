-- KEYS: meta, messages, dedupe, turn lease, summary lease, fence
-- -> {version, pttl, dump(meta), pttl(meta), dump(messages) or '', pttl, ...} or {}
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local out = {redis.call('HGET', KEYS[1], 'v'), redis.call('PTTL', KEYS[1])}
for i = 1, #KEYS do
  local dump = redis.call('DUMP', KEYS[i])
  out[#out + 1] = dump or ''
  out[#out + 1] = dump and redis.call('PTTL', KEYS[i]) or 0
end
return out
