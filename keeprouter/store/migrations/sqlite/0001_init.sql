-- KeepRouter schema 1 (SQLite). Never edit: add 0002_*.sql instead.
-- Money is integer nano-dollars (1e-9 USD); STRICT tables refuse a float in a money column.
-- Times are REAL seconds since the Unix epoch (UTC); `day` columns are whole days since the epoch.

CREATE TABLE keys (
    hash TEXT PRIMARY KEY,                  -- sha256 hex of the key; the key itself is never stored
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    limit_nanos INTEGER CHECK (limit_nanos IS NULL OR limit_nanos >= 0),
    limit_reset TEXT CHECK (limit_reset IS NULL OR limit_reset IN ('daily', 'weekly', 'monthly')),
    expires_at REAL,
    usage_nanos INTEGER NOT NULL DEFAULT 0 CHECK (usage_nanos >= 0),        -- = SUM(generations.cost_nanos)
    reserved_nanos INTEGER NOT NULL DEFAULT 0 CHECK (reserved_nanos >= 0),  -- = SUM(holds.amount_nanos)
    -- Usage since `period_start` (an epoch day): what a key with limit_reset is limited on. Kept on
    -- the key row so the admission check reads one row.
    period_start INTEGER NOT NULL DEFAULT 0,
    period_usage_nanos INTEGER NOT NULL DEFAULT 0 CHECK (period_usage_nanos >= 0),
    created_at REAL NOT NULL,
    updated_at REAL,
    deleted_at REAL                         -- kept, not removed: generations point at it
) STRICT;

-- Credit held for requests in flight; expires so a crashed gateway's credit comes back.
CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL REFERENCES keys (hash),
    amount_nanos INTEGER NOT NULL CHECK (amount_nanos >= 0),
    expires_at REAL NOT NULL
) STRICT;
CREATE INDEX holds_expires_at ON holds (expires_at);
CREATE INDEX holds_key_hash ON holds (key_hash);

CREATE TABLE generations (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL REFERENCES keys (hash),
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    api TEXT NOT NULL,
    streamed INTEGER NOT NULL CHECK (streamed IN (0, 1)),
    status TEXT NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
    finish_reason TEXT,
    tokens_prompt INTEGER NOT NULL CHECK (tokens_prompt >= 0),
    tokens_completion INTEGER NOT NULL CHECK (tokens_completion >= 0),
    tokens_cached INTEGER NOT NULL CHECK (tokens_cached >= 0),
    tokens_cache_write INTEGER NOT NULL CHECK (tokens_cache_write >= 0),
    tokens_reasoning INTEGER NOT NULL CHECK (tokens_reasoning >= 0),
    cost_nanos INTEGER NOT NULL CHECK (cost_nanos >= 0),
    latency_ms INTEGER,
    ttft_ms INTEGER,
    throughput REAL,
    app TEXT,
    app_title TEXT,
    attempts TEXT NOT NULL DEFAULT '[]',    -- JSON list of the earlier endpoints' failures
    error TEXT,
    created_at REAL NOT NULL,
    day INTEGER NOT NULL
) STRICT;
CREATE INDEX generations_key_created ON generations (key_hash, created_at);
CREATE INDEX generations_day ON generations (day);

-- Per key per UTC day, for usage_daily/weekly/monthly without scanning generations.
CREATE TABLE key_usage_daily (
    key_hash TEXT NOT NULL REFERENCES keys (hash),
    day INTEGER NOT NULL,
    usage_nanos INTEGER NOT NULL CHECK (usage_nanos >= 0),
    requests INTEGER NOT NULL CHECK (requests >= 0),
    PRIMARY KEY (key_hash, day)
) STRICT, WITHOUT ROWID;
