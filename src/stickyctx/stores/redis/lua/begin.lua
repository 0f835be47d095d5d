-- A turn's first round trip: take the turn lease and load the session, in one step.
-- KEYS: meta, messages, dedupe, tombstone, turn lease, fence counter
-- ARGV: the 8 arguments of load.lua, then holder, ttl_ms, live node ids, writing (1: take the
--       lease even if the session does not exist: the caller is about to create it), and the
--       idempotency keys to probe (a retried turn: which of its messages are stored already)
-- -> {'revoked'[, follow pointer]} | {'missing'} | {'busy'} | {token, flags ('1' per probed key stored), then
--    what load.lua answers: 'missing' | 'same' | 'tail'|'full', meta, items...}
-- A session that does not exist takes no lease unless writing: a read of it writes nothing.
local gone = revoked(KEYS[4])
if gone then return gone end
if ARGV[12] ~= '1' and redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local token = take_lease(KEYS[5], KEYS[6], ARGV[9], ARGV[10], ARGV[2], ARGV[11])
if not token then return {'busy'} end
local flags = ''
for i = 13, #ARGV do
  flags = flags .. redis.call('SISMEMBER', KEYS[3], ARGV[i])
end
local out = {token, flags}
local loaded = load_session(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]),
                            ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7],
                            ARGV[8])
for i = 1, #loaded do out[#out + 1] = loaded[i] end
return out
