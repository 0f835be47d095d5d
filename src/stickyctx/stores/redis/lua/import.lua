-- KEYS: meta, messages, dedupe, turn lease, summary lease, fence (of the new id)
-- ARGV: pairs of (dump or '', pttl) for each key, in KEYS order
for i = 1, #KEYS do
  local dump, ttl = ARGV[i * 2 - 1], tonumber(ARGV[i * 2])
  if dump ~= '' then
    redis.call('RESTORE', KEYS[i], math.max(ttl, 1), dump, 'REPLACE')
  end
end
stamp(KEYS[1])
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HINCRBY', KEYS[1], 'rv', 1)
return 1
