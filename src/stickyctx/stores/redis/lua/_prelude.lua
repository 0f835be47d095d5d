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

local function fence_ok(lease_key, fence)
  if fence == '' then return true, '' end
  local lease = redis.call('GET', lease_key)
  local current = lease and string.match(lease, '^(%d+)|') or ''
  return current == fence, current
end
