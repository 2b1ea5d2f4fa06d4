-- Count one endpoint's outcomes across every instance and decide its circuit, in one atomic step.
-- KEYS[1]: the open circuits, a sorted set of endpoint -> opened-at (ms, this server's clock).
-- KEYS[2]: this endpoint's outcomes, a hash of per-second buckets: "t<sec>" requests, "f<sec>" failures.
-- ARGV: endpoint, mode ("count" | "close" | "reopen"), successes, failures, window (s),
-- min requests, failure ratio.
-- "count" opens the circuit when, over the window, at least min requests were counted and more
-- than ratio of them failed (routing/health.py's rule, across instances); "close" is a half-open
-- probe's success (the counts start afresh); "reopen" is its failure.
-- Returns {open 1|0, opened-at ms, now ms}.
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now = now_s * 1000 + math.floor(tonumber(t[2]) / 1000)
local open, counts, ep, mode = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if mode == 'close' then
  redis.call('ZREM', open, ep)
  redis.call('DEL', counts)
  return {0, 0, now}
end
if mode == 'reopen' then
  redis.call('ZADD', open, now, ep)
  return {1, now, now}
end
local ok, failed, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if ok + failed > 0 then
  redis.call('HINCRBY', counts, 't' .. now_s, ok + failed)
  if failed > 0 then redis.call('HINCRBY', counts, 'f' .. now_s, failed) end
  redis.call('EXPIRE', counts, window + 1)
end
local opened = redis.call('ZSCORE', open, ep)
if opened then return {1, tonumber(opened), now} end
if failed == 0 then return {0, 0, now} end  -- successes alone never open a circuit
local total, fails = 0, 0
local fields = redis.call('HGETALL', counts)
for i = 1, #fields, 2 do
  local name = fields[i]
  if now_s - tonumber(string.sub(name, 2)) >= window then
    redis.call('HDEL', counts, name)
  elseif string.sub(name, 1, 1) == 't' then
    total = total + tonumber(fields[i + 1])
  else
    fails = fails + tonumber(fields[i + 1])
  end
end
if total >= tonumber(ARGV[6]) and fails > total * tonumber(ARGV[7]) then
  redis.call('ZADD', open, now, ep)
  return {1, now, now}
end
return {0, 0, now}
