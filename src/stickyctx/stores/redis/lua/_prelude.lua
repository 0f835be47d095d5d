-- Shared helpers, prepended to every script. Keys of one session share one {hash tag}.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Every key of the session gets one deadline: idle after now, never past the absolute lifetime.
local function expire_all(keys, now, created, idle, absolute)
  local deadline = math.min(now + idle, created + absolute)
  for _, key in ipairs(keys) do
    redis.call('PEXPIREAT', key, deadline)
  end
  return deadline
end

-- A stored item is "seq,group,cum,tokens,size,encoding\n" followed by the message payload.
local function header(item)
  local seq, group, cum, tokens, size = string.match(item, '^(%d+),(%d+),(%d+),(%d+),(%d+),')
  return tonumber(seq), tonumber(group), tonumber(cum), tonumber(tokens), tonumber(size)
end

-- A write id that changes with every write and never repeats, even if Redis lost writes and
-- the version climbs back to a number a node has cached: its hot tier then reloads.
local function stamp(meta_key, t)
  t = t or redis.call('TIME')
  local w = t[1] .. '.' .. t[2]
  redis.call('HSET', meta_key, 'w', w)
  return w
end

-- A tombstone is '1', or a rotation's 'F|deadline_ms|pointer': until the deadline, the old id
-- answers the pointer (opaque here) so that requests still carrying it follow to the new id.
local function revoked(tombstone_key)
  local t = redis.call('GET', tombstone_key)
  if not t then return nil end
  local deadline, pointer = string.match(t, '^F|(%d+)|(.+)$')
  if deadline and tonumber(deadline) > now_ms() then return {'revoked', pointer} end
  return {'revoked'}
end

local function fence_ok(lease_key, fence)
  if fence == '' then return true, '' end
  local lease = redis.call('GET', lease_key)
  local current = lease and string.match(lease, '^(%d+)|') or ''
  return current == fence, current
end

-- The turn lease: a fencing token (strictly increasing per session), or false when the lease is
-- held. A lease whose holder's node is not among the live ids (comma-separated; '' = none) is
-- taken over: that node died mid-turn; the new token makes its late writes fail.
local function take_lease(lease_key, fence_key, holder, ttl_ms, absolute_ms, live)
  local held = redis.call('GET', lease_key)
  if held then
    local node = string.match(held, '^%d+|([^:]+):')
    if live == '' or not node then return false end
    for id in string.gmatch(live, '[^,]+') do
      if id == node then return false end
    end
  end
  local token = redis.call('INCR', fence_key)
  redis.call('PEXPIRE', fence_key, absolute_ms)
  redis.call('SET', lease_key, token .. '|' .. holder, 'PX', ttl_ms)
  return token
end

-- A session's context for a node that knows version `known_v` (rewrite counter `known_rv`,
-- `known_count` items, write id `known_w`, and `known_last`: the header of its last item):
-- {'same'} when it is current, {'tail', meta, new items...} when only appends happened since,
-- else {'full', meta, items...}; {'missing'} without a session. Refreshes the expiry at most
-- once per `refresh_ms`.
local function load_session(meta_key, list_key, dedupe_key, idle, absolute, known_v, known_rv,
                            known_count, refresh_ms, known_w, known_last)
  local meta = redis.call('HGETALL', meta_key)
  if #meta == 0 then return {'missing'} end
  local h = {}
  for i = 1, #meta, 2 do h[meta[i]] = meta[i + 1] end
  local now = now_ms()
  if now - tonumber(h.rf or '0') >= refresh_ms then
    expire_all({meta_key, list_key, dedupe_key}, now, tonumber(h.cr), idle, absolute)
    redis.call('HSET', meta_key, 'rf', now)
  end
  if h.v == known_v and (h.w or '') == known_w then return {'same'} end
  local kind, items = 'full', nil
  local lines_up = known_count == 0
  if h.rv == known_rv and known_count > 0 then
    local last = redis.call('LINDEX', list_key, known_count - 1)
    lines_up = last ~= false and string.sub(last, 1, #known_last) == known_last
  end
  if h.rv == known_rv and known_count >= 0 and lines_up then
    kind = 'tail'
    items = redis.call('LRANGE', list_key, known_count, -1)
  else
    items = redis.call('LRANGE', list_key, 0, -1)
  end
  -- The meta travels as one JSON string: one reply element instead of two per field.
  local out = {kind, cjson.encode(h)}
  for i = 1, #items do out[#out + 1] = items[i] end
  return out
end
