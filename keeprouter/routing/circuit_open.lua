-- The open circuits, for an instance's periodic refresh, forgetting any left untouched (no
-- instance probed or re-opened it) for longer than ARGV[1] ms.
-- KEYS[1]: the open circuits, a sorted set of endpoint -> opened-at (ms).
-- Returns {now ms, endpoint, opened-at, endpoint, opened-at, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
local out = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
table.insert(out, 1, now)
return out
