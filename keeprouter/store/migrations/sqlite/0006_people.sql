-- KeepRouter schema 5 (SQLite): users and teams, their budgets, and what keys they own.
-- Never edit once released: add 0006_*.sql instead.
-- A team or user budget works like a key's: `limit_nanos` per `limit_reset` period (UTC day, week
-- from Monday, month) or all time, `period_usage_nanos` since `period_start` (an epoch day), kept
-- on the row so admission reads one row per budget. `models` is a JSON list (empty = all models).
-- Holds in flight live in the gateway process's memory on SQLite (see store/sqlite.py), so
-- `reserved_nanos` stays 0 here as it does on keys.

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    limit_nanos INTEGER CHECK (limit_nanos IS NULL OR limit_nanos >= 0),
    limit_reset TEXT CHECK (limit_reset IS NULL OR limit_reset IN ('daily', 'weekly', 'monthly')),
    models TEXT NOT NULL DEFAULT '[]',
    rpm_limit INTEGER CHECK (rpm_limit IS NULL OR rpm_limit > 0),
    usage_nanos INTEGER NOT NULL DEFAULT 0 CHECK (usage_nanos >= 0),
    reserved_nanos INTEGER NOT NULL DEFAULT 0 CHECK (reserved_nanos >= 0),
    period_start INTEGER NOT NULL DEFAULT 0,
    period_usage_nanos INTEGER NOT NULL DEFAULT 0 CHECK (period_usage_nanos >= 0),
    created_at REAL NOT NULL,
    updated_at REAL,
    deleted_at REAL
) STRICT;

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,                    -- as given; matched case-insensitively
    team_id TEXT REFERENCES teams (id),
    team_admin INTEGER NOT NULL DEFAULT 0 CHECK (team_admin IN (0, 1)),
    limit_nanos INTEGER CHECK (limit_nanos IS NULL OR limit_nanos >= 0),
    limit_reset TEXT CHECK (limit_reset IS NULL OR limit_reset IN ('daily', 'weekly', 'monthly')),
    models TEXT NOT NULL DEFAULT '[]',
    rpm_limit INTEGER CHECK (rpm_limit IS NULL OR rpm_limit > 0),
    usage_nanos INTEGER NOT NULL DEFAULT 0 CHECK (usage_nanos >= 0),
    reserved_nanos INTEGER NOT NULL DEFAULT 0 CHECK (reserved_nanos >= 0),
    period_start INTEGER NOT NULL DEFAULT 0,
    period_usage_nanos INTEGER NOT NULL DEFAULT 0 CHECK (period_usage_nanos >= 0),
    created_at REAL NOT NULL,
    updated_at REAL,
    deleted_at REAL
) STRICT;
CREATE UNIQUE INDEX users_live_email ON users (lower(email)) WHERE deleted_at IS NULL;
CREATE INDEX users_team ON users (team_id);

-- A key belongs to a user (team_id then mirrors the user's team) or to a team alone (a service key).
ALTER TABLE keys ADD COLUMN user_id TEXT REFERENCES users (id);
ALTER TABLE keys ADD COLUMN team_id TEXT REFERENCES teams (id);
ALTER TABLE keys ADD COLUMN models TEXT NOT NULL DEFAULT '[]';  -- JSON allowlist; empty = all
ALTER TABLE keys ADD COLUMN max_parallel_requests INTEGER CHECK (max_parallel_requests IS NULL OR max_parallel_requests > 0);
CREATE INDEX keys_user ON keys (user_id);
CREATE INDEX keys_team ON keys (team_id);
