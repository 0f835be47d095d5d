-- KEYS: lease, fence counter
-- ARGV: holder ('node:nonce'), ttl_ms, absolute_ms, live node ids (comma-separated; '' = none)
-- -> fencing token (strictly increasing per session), or false when the lease is held.
-- A lease whose holder's node is not among the live ids is taken over: that node died mid-turn
-- (its lease would otherwise block the session until it expires); the new fencing token makes
-- any late write of the old holder fail.
local held = redis.call('GET', KEYS[1])
if held then
  local live = ARGV[4] or ''
  local node = string.match(held, '^%d+|([^:]+):')
  if live == '' or not node then return false end
  for id in string.gmatch(live, '[^,]+') do
    if id == node then return false end
  end
end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], token .. '|' .. ARGV[1], 'PX', ARGV[2])
return token
