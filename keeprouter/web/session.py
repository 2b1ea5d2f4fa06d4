"""Console sign-in: server-side sessions behind a random cookie, CSRF tokens, sign-in backoff.

The cookie holds a random session id (secrets.token_urlsafe(32)), never the key; the database holds
only its sha256, so sessions survive restarts and work on every instance sharing the database, and
a leaked database opens none. Each request resolves the session to its key record afresh, so a key
disabled or deleted ends its sessions at once. The CSRF token is an HMAC of the session id: per
session, the same on every instance, and unknowable without the cookie.

Before there is a session, the sign-in form is guarded by a signed double-submit token: GET /login
sets a random nonce in a SameSite=Strict cookie and puts HMAC(server secret, nonce) in the form;
POST /login needs both to agree. A cross-site page can neither read the form nor send the cookie,
and a cookie planted by a sibling host is useless without the server's signature.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from keeprouter.keys import KeyService
from keeprouter.store.base import KeyRecord, SessionRecord, SessionStore, UserRecord

COOKIE = "kr_session"
LOGIN_COOKIE = "kr_login"  # the pre-session nonce of the sign-in form
LOGIN_COOKIE_SECONDS = 3600
IDLE_SECONDS = 12 * 3600.0
ABSOLUTE_SECONDS = 7 * 86_400.0
TOUCH_EVERY = 60.0  # seconds between last_seen writes: not one write per page view
SWEEP_EVERY = 300.0  # seconds between sweeps of ended sessions: at most one per sign-in, per process
BACKOFF_BASE, BACKOFF_MAX = 1.0, 300.0  # seconds refused after the 1st failure, and at most
_BACKOFF_ENTRIES = 10_000  # client addresses remembered; cleared wholesale when full


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"keeprouter-console-csrf", hashlib.sha256).hexdigest()


def login_secret(admin_key: str | None) -> bytes:
    """The server secret signing sign-in nonces: from the admin key, so every instance of one
    deployment agrees; random per process when there is no admin key (sign-in still works against
    the instance that served the form, which is the usual case without a load balancer)."""
    if admin_key:
        return hmac.new(admin_key.encode(), b"keeprouter-login-csrf", hashlib.sha256).digest()
    return secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class LoginGuard:
    """The sign-in form's signed double-submit token."""

    secret: bytes

    @staticmethod
    def nonce(cookie: str | None) -> str:
        """The visitor's nonce: the cookie's when it looks like one of ours, else a new one."""
        if cookie and 20 <= len(cookie) <= 100 and cookie.replace("-", "").replace("_", "").isalnum():
            return cookie
        return secrets.token_urlsafe(32)

    def token(self, nonce: str) -> str:
        return hmac.new(self.secret, nonce.encode(), hashlib.sha256).hexdigest()

    def ok(self, cookie: str | None, presented: str | None) -> bool:
        if not cookie or not presented or len(cookie) > 100:
            return False
        return hmac.compare_digest(presented.encode(), self.token(cookie).encode())


@dataclass(frozen=True, slots=True)
class Signed:
    """A resolved session: its id (to derive the CSRF token), and the key it signs in as; for a
    person signed in with OpenID Connect, their user record too (read by the console's guard)."""

    session_id: str
    record: KeyRecord
    user: UserRecord | None = None

    @property
    def csrf(self) -> str:
        return csrf_token(self.session_id)

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(str(presented).encode(), self.csrf.encode())


@dataclass(slots=True)
class Backoff:
    """Failed sign-ins per client address: after n failures, refuse for BASE * 2^(n-1) seconds."""

    clock: Callable[[], float] = time.monotonic
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # addr -> (count, blocked until)

    def wait(self, addr: str) -> float:
        hit = self.failures.get(addr)
        return 0.0 if hit is None else max(hit[1] - self.clock(), 0.0)

    def failed(self, addr: str) -> None:
        if len(self.failures) >= _BACKOFF_ENTRIES:
            self.failures.clear()
        n = self.failures.get(addr, (0, 0.0))[0] + 1
        self.failures[addr] = (n, self.clock() + min(BACKOFF_BASE * 2 ** (n - 1), BACKOFF_MAX))

    def succeeded(self, addr: str) -> None:
        self.failures.pop(addr, None)


class Sessions:
    def __init__(
        self,
        store: SessionStore,
        keys: KeyService,
        clock: Callable[[], float] = time.time,
        *,
        login_secret: bytes | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock
        self.backoff = Backoff()
        self.login = LoginGuard(login_secret or secrets.token_bytes(32))
        self._next_sweep = 0.0
        # Sessions that stand for something other than a key, by prefix of what they stand for:
        # "user:" -> the signed-in user's record (web/oidc.py); resolved afresh on every request.
        self.principals: dict[str, Callable[[str], Awaitable[KeyRecord | None]]] = {}

    async def sweep(self) -> int:
        """Delete ended sessions (past their absolute end, or idle too long); their number."""
        now = self.clock()
        self._next_sweep = now + SWEEP_EVERY
        return await self.store.delete_sessions_before(now, now - IDLE_SECONDS)

    async def open(self, record: KeyRecord) -> str:
        """A new session for `record`; returns the id for the cookie (shown nowhere else)."""
        now = self.clock()
        session_id = secrets.token_urlsafe(32)
        if now >= self._next_sweep:  # swept as people sign in, at most every SWEEP_EVERY seconds
            await self.sweep()
        await self.store.insert_session(SessionRecord(
            id_hash=_digest(session_id), key_hash=record.hash, created_at=now, last_seen=now,
            expires_at=now + ABSOLUTE_SECONDS,
        ))  # fmt: skip
        return session_id

    async def resolve(self, session_id: str | None) -> Signed | None:
        """The live session behind a cookie, or None (absent, expired, idle, or its key gone)."""
        if not session_id or len(session_id) > 100:
            return None
        id_hash = _digest(session_id)
        found = await self.store.get_session(id_hash)
        if found is None:
            return None
        now = self.clock()
        record = None
        if found.expires_at > now and found.last_seen > now - IDLE_SECONDS:
            prefix, sep, rest = found.key_hash.partition(":")
            other = self.principals.get(prefix + sep) if sep else None
            record = await (other(rest) if other else self.keys.session_record(found.key_hash))
        if record is None:
            await self.store.delete_session(id_hash)
            return None
        if now - found.last_seen >= TOUCH_EVERY:
            await self.store.touch_session(id_hash, now)
        return Signed(session_id, record)

    async def close(self, session_id: str) -> None:
        await self.store.delete_session(_digest(session_id))
