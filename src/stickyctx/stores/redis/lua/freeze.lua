-- KEYS: meta, messages, dedupe, turn lease, summary lease, fence, restored marker
-- ARGV: expected_version
-- The cold tier's last step of a move: delete the session from Redis (no tombstone: it lives on
-- in the cold tier) only if nothing changed since it was copied and no turn or summary holds it.
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[6], KEYS[7])
return 1
