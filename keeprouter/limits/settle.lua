-- Count a request's real tokens instead of its reservation, in one atomic step.
-- KEYS as admit.lua; ARGV: ticket id, tokens. An entry already out of the window (or released)
-- is left alone. Setting (not adding) makes a retried call count once. Returns 1 if it was counted.
local tok, id, tokens = KEYS[2], ARGV[1], tonumber(ARGV[2])
local old = redis.call('HGET', tok, id)
if not old then return 0 end
redis.call('HSET', tok, id, tokens)
redis.call('HINCRBY', tok, '#', tokens - tonumber(old))
return 1
