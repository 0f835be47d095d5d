-- Change a conversation record atomically. Optional arguments are '' (leave) or '=' .. value.
-- KEYS: record. ARGV: ttl_ms, title, title_if_empty, labels (JSON), add_member, remove_member,
-- node, expected_node, activity, turns, tokens.
-- Returns false without a record, else the record after the change (HGETALL).
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local function opt(i)
  local v = ARGV[i]
  if v == '' then return nil end
  return string.sub(v, 2)
end
local expected = opt(8)
if expected ~= nil and (redis.call('HGET', KEYS[1], 'n') or '') ~= expected then
  return redis.call('HGETALL', KEYS[1])
end
local title, if_empty = opt(2), opt(3)
if title ~= nil then
  redis.call('HSET', KEYS[1], 't', title)
elseif if_empty ~= nil and (redis.call('HGET', KEYS[1], 't') or '') == '' then
  redis.call('HSET', KEYS[1], 't', if_empty)
end
local labels = opt(4)
if labels ~= nil then redis.call('HSET', KEYS[1], 'l', labels) end
local add, remove = opt(5), opt(6)
if add ~= nil or remove ~= nil then
  local members = cjson.decode(redis.call('HGET', KEYS[1], 'm') or '[]')
  local out, seen = {}, false
  for _, m in ipairs(members) do
    if m ~= remove then table.insert(out, m) end
    if m == add then seen = true end
  end
  if add ~= nil and not seen then table.insert(out, add) end
  local encoded = '[]'
  if #out > 0 then encoded = cjson.encode(out) end
  redis.call('HSET', KEYS[1], 'm', encoded)
end
local node = opt(7)
if node ~= nil then redis.call('HSET', KEYS[1], 'n', node) end
local activity = opt(9)
if activity ~= nil then
  local current = tonumber(redis.call('HGET', KEYS[1], 'a') or '0')
  if tonumber(activity) > current then redis.call('HSET', KEYS[1], 'a', activity) end
end
if tonumber(ARGV[10]) ~= 0 then redis.call('HINCRBY', KEYS[1], 'tu', ARGV[10]) end
if tonumber(ARGV[11]) ~= 0 then redis.call('HINCRBY', KEYS[1], 'tk', ARGV[11]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])
