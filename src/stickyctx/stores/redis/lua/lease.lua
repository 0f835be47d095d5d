-- KEYS: lease, fence counter
-- ARGV: holder ('node:nonce'), ttl_ms, absolute_ms, live node ids (comma-separated; '' = none)
-- -> fencing token (strictly increasing per session), or false when the lease is held.
return take_lease(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4] or '')
