-- KeepRouter schema 3 (SQLite): per-key request and token rate limits.
-- Never edit once released: add 0004_*.sql instead.
-- NULL = no limit. Enforced by keeprouter.limits (Redis or process memory), never in the database:
-- the database only stores what the operator set.

ALTER TABLE keys ADD COLUMN rpm_limit INTEGER CHECK (rpm_limit IS NULL OR rpm_limit > 0);  -- requests per 60 s
ALTER TABLE keys ADD COLUMN tpm_limit INTEGER CHECK (tpm_limit IS NULL OR tpm_limit > 0);  -- tokens per 60 s
