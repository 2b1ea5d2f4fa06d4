-- KeepRouter schema 8: the response cache (off unless `response_cache` is configured; with Redis
-- configured it lives there instead), and generations answered from it.
-- Never edit once released: add a new numbered file instead.
-- `key` names the owner and a digest of the canonical request (keeprouter.gateway.response_cache);
-- `answer` is the cached answer as JSON text. Expired rows are never read and are swept with the
-- oldest rows beyond the configured size.

CREATE TABLE response_cache (
    key TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX response_cache_expires ON response_cache (expires_at);

-- A generation replayed from the response cache (it cost nothing; its tokens are the original's).
ALTER TABLE generations ADD COLUMN cached INTEGER NOT NULL DEFAULT 0 CHECK (cached IN (0, 1));
