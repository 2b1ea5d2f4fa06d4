-- KeepRouter schema 2 (SQLite): per-endpoint per-minute health aggregates, charted per day.
-- Never edit once released: add 0003_*.sql instead.
--
-- One row per endpoint (model, provider, upstream_model) per wall-clock minute (`minute` = epoch
-- seconds at the start of the minute, a multiple of 60). Every count and sum is ADDED on conflict:
-- several gateway instances sharing a database each write their own share of the same minute, and
-- each instance writes each minute once (routing.rollup.MinuteRollup). Uptime and means are derived
-- from the sums when read. The per-minute percentiles are the one thing that does not add up: on
-- conflict they become the latency-count-weighted mean of both writers' values (an approximation).

CREATE TABLE endpoint_minutes (
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    minute INTEGER NOT NULL CHECK (minute % 60 = 0),
    requests INTEGER NOT NULL CHECK (requests >= 0),
    successes INTEGER NOT NULL CHECK (successes >= 0),
    rate_limited INTEGER NOT NULL CHECK (rate_limited >= 0),   -- 429s: neither success nor failure
    latency_sum REAL NOT NULL CHECK (latency_sum >= 0),        -- seconds (to first token)
    latency_count INTEGER NOT NULL CHECK (latency_count >= 0),
    throughput_sum REAL NOT NULL CHECK (throughput_sum >= 0),  -- output tokens per second
    throughput_count INTEGER NOT NULL CHECK (throughput_count >= 0),
    latency_p50 REAL,
    latency_p90 REAL,
    PRIMARY KEY (model, provider, upstream_model, minute)
) STRICT, WITHOUT ROWID;
CREATE INDEX endpoint_minutes_minute ON endpoint_minutes (minute);
