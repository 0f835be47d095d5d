-- KEYS: meta, messages, dedupe, turn lease, tombstone
-- ARGV: created_ms, create (0/1), fence ('' = none), idle_ms, absolute_ms, max_tokens,
--       max_bytes, count, wrapped data key ('' = not encrypted), release (1: then release the
--       turn lease the fence holds: a turn's commit), first seq ('' = any: the payloads are
--       not sealed for their positions), then per message: dedupe ('' = none;
--       'key|fingerprint' = key and a digest of the message), opener (0/1), tokens, size,
--       encoding, payload
-- The dedupe set holds, per key, 'key' (the message is stored), and with a fingerprint also
-- 'key|' (this key has one) and 'key|fingerprint'. A key stored with another fingerprint is a
-- reused key: nothing is written and the reply is {'reused', index}.
-- With a first seq, nothing is written unless the messages get exactly the sequence numbers
-- their payloads were sealed for: the reply is {'reseal', next seq, stored flags} when the
-- session's next number differs or a message is already stored.
-- -> {'revoked'[, follow pointer]} | {'missing'} | {'fenced', current} | {'dek', stored wrapped key} |
--    {'reused', index} | {'reseal', next seq, flags} |
--    {'live', version, total, dropped, flags, write_id, previous_write_id, bytes, seq1,
--     group1, cum1, ...}
local gone = revoked(KEYS[5])
if gone then return gone end
local ok, current = fence_ok(KEYS[4], ARGV[3])
if not ok then return {'fenced', current} end
local count = tonumber(ARGV[8])
local keys, prints = {}, {}
for i = 0, count - 1 do
  local arg = ARGV[12 + i * 6]
  local bar = string.find(arg, '|', 1, true)
  local key = bar and string.sub(arg, 1, bar - 1) or arg
  local fp = bar and string.sub(arg, bar + 1) or ''
  keys[i], prints[i] = key, fp
  if fp ~= '' and redis.call('SISMEMBER', KEYS[3], key .. '|') == 1
      and redis.call('SISMEMBER', KEYS[3], key .. '|' .. fp) == 0 then
    return {'reused', i}
  end
end
if ARGV[11] ~= '' then
  local next_seq = tonumber(redis.call('HGET', KEYS[1], 'n') or '1')
  local stored, any = '', false
  for i = 0, count - 1 do
    if keys[i] ~= '' and redis.call('SISMEMBER', KEYS[3], keys[i]) == 1 then
      stored, any = stored .. '1', true
    else
      stored = stored .. '0'
    end
  end
  if any or next_seq ~= tonumber(ARGV[11]) then return {'reseal', next_seq, stored} end
end
local clock = redis.call('TIME')  -- one clock reading: the deadline and the write id
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local idle, absolute = tonumber(ARGV[4]), tonumber(ARGV[5])
local dek = ARGV[9]
if redis.call('EXISTS', KEYS[1]) == 0 then
  local created = tonumber(ARGV[1])
  if ARGV[2] == '0' or now >= created + absolute then return {'missing'} end
  redis.call('HSET', KEYS[1], 'v', 0, 'rv', 0, 'n', 1, 'g', 0, 't', 0, 'b', 0, 'c', 0,
             'cr', created, 'enc', '')
  if dek ~= '' then redis.call('HSET', KEYS[1], 'dek', dek) end
elseif dek ~= '' then
  -- Payloads were sealed with the session's data key: it must be the one stored.
  local stored = redis.call('HGET', KEYS[1], 'dek')
  if not stored then
    redis.call('HSET', KEYS[1], 'dek', dek)  -- a session from before encryption was turned on
  elseif stored ~= dek then
    return {'dek', stored}
  end
end
local m = redis.call('HMGET', KEYS[1], 'v', 'rv', 'n', 'g', 't', 'b', 'c', 'cr', 'enc', 'w')
local previous = m[10] or ''
local v, rv, n, g = tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
local t, b, c, created, enc = tonumber(m[5]), tonumber(m[6]), tonumber(m[7]), tonumber(m[8]), m[9]
local flags, out = '', {}
local wrote = false
for i = 0, count - 1 do
  local base = 12 + i * 6
  local dedupe, opener = keys[i], ARGV[base + 1]
  local tokens, size, encoding = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]), ARGV[base + 4]
  if dedupe ~= '' and redis.call('SISMEMBER', KEYS[3], dedupe) == 1 then
    flags = flags .. '0'
  else
    local seq = n
    n = n + 1
    if opener == '1' or g == 0 then g = seq end
    c = c + tokens
    t = t + tokens
    b = b + size
    redis.call('RPUSH', KEYS[2], seq .. ',' .. g .. ',' .. c .. ',' .. tokens .. ',' .. size .. ','
               .. encoding .. '\n' .. ARGV[base + 5])
    if dedupe ~= '' then redis.call('SADD', KEYS[3], dedupe) end
    if prints[i] ~= '' then redis.call('SADD', KEYS[3], dedupe .. '|', dedupe .. '|' .. prints[i]) end
    if not string.find(',' .. enc .. ',', ',' .. encoding .. ',', 1, true) then
      enc = (enc == '') and encoding or (enc .. ',' .. encoding)
    end
    flags = flags .. '1'
    out[#out + 1] = seq
    out[#out + 1] = g
    out[#out + 1] = c
    wrote = true
  end
end
local dropped = 0
if wrote then
  local max_t, max_b = tonumber(ARGV[6]), tonumber(ARGV[7])
  while t > max_t or b > max_b do
    local _, group0 = header(redis.call('LINDEX', KEYS[2], 0))
    if group0 == g then break end
    while true do
      local first = redis.call('LINDEX', KEYS[2], 0)
      if not first then break end
      local _, group, _, tokens, size = header(first)
      if group ~= group0 then break end
      redis.call('LPOP', KEYS[2])
      t = t - tokens
      b = b - size
      dropped = dropped + 1
    end
  end
  v = v + 1
  if dropped > 0 then rv = rv + 1 end
  redis.call('HSET', KEYS[1], 'v', v, 'rv', rv, 'n', n, 'g', g, 't', t, 'b', b, 'c', c,
             'enc', enc, 'rf', now)
end
local w = wrote and stamp(KEYS[1], clock) or previous
expire_all({KEYS[1], KEYS[2], KEYS[3]}, now, created, idle, absolute)
if ARGV[10] == '1' and ARGV[3] ~= '' then redis.call('DEL', KEYS[4]) end  -- fence checked above
local reply = {'live', v, t, dropped, flags, w, previous, b}
for i = 1, #out do reply[#reply + 1] = out[i] end
return reply
