-- Admit one request of one key, or refuse it, in one atomic step: the sliding window log of
-- keeprouter/limits/base.py (an entry counts while now < admitted_at + window).
-- KEYS[1]: the log, a sorted set of ticket id -> admission time (ms).
-- KEYS[2]: the tokens, a hash of ticket id -> tokens, and "#" -> their sum.
-- ARGV: ticket id, rpm_limit (0: none), tpm_limit (0: none), tokens reserved, now in ms ("": this
-- server's clock, one clock for every instance), window in ms.
-- Returns {admitted 1|0, refused limit 0|1 (rpm)|2 (tpm), remaining, wait ms (-1: never), now ms}.
local log, tok = KEYS[1], KEYS[2]
local id, rpm, tpm, want = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local window = tonumber(ARGV[6])
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Entries admitted at or before now - window no longer count: drop them and their tokens.
local gone = redis.call('ZRANGEBYSCORE', log, '-inf', now - window)
if #gone > 0 then
  local freed = 0
  for i = 1, #gone, 500 do
    local chunk = {unpack(gone, i, math.min(i + 499, #gone))}
    for _, n in ipairs(redis.call('HMGET', tok, unpack(chunk))) do freed = freed + (tonumber(n) or 0) end
    redis.call('HDEL', tok, unpack(chunk))
  end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  redis.call('HINCRBY', tok, '#', -freed)
end

if redis.call('ZSCORE', log, id) then return {1, 0, 0, 0, now} end  -- a retried call: admitted once

local requests = redis.call('ZCARD', log)
local used = tonumber(redis.call('HGET', tok, '#') or '0')
local over_t = tpm > 0 and used + want > tpm
if over_t and want > tpm then return {0, 2, math.max(tpm - used, 0), -1, now} end

local wait_t = 0
if over_t then
  -- Walk the oldest entries until enough of their tokens, once gone, leave room for this request.
  wait_t = window
  local excess, start, found = used + want - tpm, 0, false
  while not found do
    local page = redis.call('ZRANGE', log, start, start + 499, 'WITHSCORES')
    if #page == 0 then break end
    local ids = {}
    for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
    local counts = redis.call('HMGET', tok, unpack(ids))
    for j = 1, #ids do
      excess = excess - (tonumber(counts[j]) or 0)
      if excess <= 0 then
        wait_t, found = tonumber(page[2 * j]) + window - now, true
        break
      end
    end
    start = start + 500
  end
end

if rpm > 0 and requests >= rpm then
  -- Over both limits: the wait that satisfies both.
  local nth = redis.call('ZRANGE', log, requests - rpm, requests - rpm, 'WITHSCORES')
  return {0, 1, 0, math.max(tonumber(nth[2]) + window - now, wait_t), now}
end
if over_t then return {0, 2, math.max(tpm - used, 0), wait_t, now} end

redis.call('ZADD', log, now, id)
redis.call('HSET', tok, id, want)
redis.call('HINCRBY', tok, '#', want)
redis.call('PEXPIRE', log, window + 1000)
redis.call('PEXPIRE', tok, window + 1000)
return {1, 0, 0, 0, now}
