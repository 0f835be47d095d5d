-- KEYS: meta, messages, dedupe, tombstone
-- ARGV: idle_ms, absolute_ms, known_version, known_rewrite, known_count, refresh_ms,
--       known_write_id, known_last_header (the "seq,group,cum,tokens,size," of item count-1)
-- -> {'revoked'[, follow pointer]} | {'missing'} | {'same'} | {'tail'|'full', meta as JSON, items...}
local gone = revoked(KEYS[4])
if gone then return gone end
return load_session(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3],
                    ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8])
