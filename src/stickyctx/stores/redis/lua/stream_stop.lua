-- KEYS: stream record
-- -> the running stream's id after flagging it to stop, or false when none runs.
local r = redis.call('HMGET', KEYS[1], 'id', 'st')
if r[2] ~= 'running' then return false end
redis.call('HSET', KEYS[1], 'x', 1)
return r[1]
