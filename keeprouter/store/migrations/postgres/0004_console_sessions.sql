-- KeepRouter schema 4: console sign-in sessions (keeprouter.web.session).
-- Never edit once released: add 0005_*.sql instead.
-- Only a sha256 of the session id is stored (the id itself lives only in the browser's cookie), so
-- a leaked database opens no session. A session is refused once its key is disabled or deleted.

CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL  -- absolute end; the idle limit is checked against last_seen
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
