-- KEYS: lease   ARGV: token, holder
-- Releases the lease if the token holds it; with token 0, if the holder holds it (an attempt to
-- take it whose answer was lost to a timeout, so the caller never learned its token).
local lease = redis.call('GET', KEYS[1])
if not lease then return 0 end
local token, holder = string.match(lease, '^(%d+)|(.*)$')
if token == ARGV[1] or (ARGV[1] == '0' and ARGV[2] ~= '' and holder == ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
