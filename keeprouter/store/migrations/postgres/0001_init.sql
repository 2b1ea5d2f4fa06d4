-- KeepRouter schema 1 (PostgreSQL). Never edit: add 0002_*.sql instead.
-- Money is BIGINT nano-dollars (1e-9 USD): exact, and the same integers as on SQLite.
-- Times are DOUBLE PRECISION seconds since the Unix epoch (UTC); `day` columns are days since the epoch.

CREATE TABLE keys (
    hash TEXT PRIMARY KEY,                  -- sha256 hex of the key; the key itself is never stored
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    limit_nanos BIGINT CHECK (limit_nanos IS NULL OR limit_nanos >= 0),
    limit_reset TEXT CHECK (limit_reset IS NULL OR limit_reset IN ('daily', 'weekly', 'monthly')),
    expires_at DOUBLE PRECISION,
    usage_nanos BIGINT NOT NULL DEFAULT 0 CHECK (usage_nanos >= 0),        -- = SUM(generations.cost_nanos)
    reserved_nanos BIGINT NOT NULL DEFAULT 0 CHECK (reserved_nanos >= 0),  -- = SUM(holds.amount_nanos)
    -- Usage since `period_start` (an epoch day): what a key with limit_reset is limited on. Kept on
    -- the key row so the admission check is one row-locked UPDATE, race-free across processes.
    period_start INTEGER NOT NULL DEFAULT 0,
    period_usage_nanos BIGINT NOT NULL DEFAULT 0 CHECK (period_usage_nanos >= 0),
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION,
    deleted_at DOUBLE PRECISION             -- kept, not removed: generations point at it
);

-- Credit held for requests in flight; expires so a crashed gateway's credit comes back.
CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL REFERENCES keys (hash),
    amount_nanos BIGINT NOT NULL CHECK (amount_nanos >= 0),
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX holds_expires_at ON holds (expires_at);
CREATE INDEX holds_key_hash ON holds (key_hash);

CREATE TABLE generations (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL REFERENCES keys (hash),
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    api TEXT NOT NULL,
    streamed BOOLEAN NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
    finish_reason TEXT,
    tokens_prompt INTEGER NOT NULL CHECK (tokens_prompt >= 0),
    tokens_completion INTEGER NOT NULL CHECK (tokens_completion >= 0),
    tokens_cached INTEGER NOT NULL CHECK (tokens_cached >= 0),
    tokens_cache_write INTEGER NOT NULL CHECK (tokens_cache_write >= 0),
    tokens_reasoning INTEGER NOT NULL CHECK (tokens_reasoning >= 0),
    cost_nanos BIGINT NOT NULL CHECK (cost_nanos >= 0),
    latency_ms INTEGER,
    ttft_ms INTEGER,
    throughput DOUBLE PRECISION,
    app TEXT,
    app_title TEXT,
    attempts TEXT NOT NULL DEFAULT '[]',    -- JSON list of the earlier endpoints' failures
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    day INTEGER NOT NULL
);
CREATE INDEX generations_key_created ON generations (key_hash, created_at);
CREATE INDEX generations_day ON generations (day);

-- Per key per UTC day, for usage_daily/weekly/monthly without scanning generations.
CREATE TABLE key_usage_daily (
    key_hash TEXT NOT NULL REFERENCES keys (hash),
    day INTEGER NOT NULL,
    usage_nanos BIGINT NOT NULL CHECK (usage_nanos >= 0),
    requests INTEGER NOT NULL CHECK (requests >= 0),
    PRIMARY KEY (key_hash, day)
);
