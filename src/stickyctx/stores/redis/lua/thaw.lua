-- KEYS: meta, messages, dedupe, turn lease, summary lease, fence, tombstone, restored marker
-- ARGV: pairs of (dump or '', pttl) for the first six keys, as the cold tier kept them
-- -> 1 restored; nothing done: 0 the session is in Redis already, -1 revoked, -2 expired
if redis.call('EXISTS', KEYS[7]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[1] == '' or tonumber(ARGV[2]) <= 0 then return -2 end  -- its lifetime is over
local fence = tonumber(redis.call('GET', KEYS[6]) or '0')
local fence_ttl = redis.call('PTTL', KEYS[6])
local meta_ttl = 1
for i = 1, 6 do
  local dump, ttl = ARGV[i * 2 - 1], tonumber(ARGV[i * 2])
  if dump ~= '' and ttl > 0 then
    redis.call('RESTORE', KEYS[i], ttl, dump, 'REPLACE')
    if i == 1 then meta_ttl = ttl end
  end
end
-- Fencing tokens only grow: a token granted while the session was cold stays below the next.
if fence > tonumber(redis.call('GET', KEYS[6]) or '0') then
  redis.call('SET', KEYS[6], fence)
  if fence_ttl > 0 then redis.call('PEXPIRE', KEYS[6], fence_ttl) end
end
stamp(KEYS[1])
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HINCRBY', KEYS[1], 'rv', 1)  -- nodes that cached it reload it whole
redis.call('SET', KEYS[8], '1', 'PX', meta_ttl)  -- the mover deletes the cold copy it leaves
return 1
