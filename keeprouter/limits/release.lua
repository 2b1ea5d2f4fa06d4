-- Take a request's entry out of the window (it never reached an upstream), in one atomic step.
-- KEYS as admit.lua; ARGV: ticket id. Returns 1 if there was an entry.
local log, tok, id = KEYS[1], KEYS[2], ARGV[1]
local old = redis.call('HGET', tok, id)
if old then
  redis.call('HDEL', tok, id)
  redis.call('HINCRBY', tok, '#', -tonumber(old))
end
return redis.call('ZREM', log, id)
