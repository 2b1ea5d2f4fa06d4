"""API keys: creation, authentication and OpenRouter-shaped views.

A key is "sk-kr-v1-" + 32 random bytes (urlsafe base64). Only its sha256 hex digest is stored, so
a leaked database leaks no usable key; the full key is returned once, by `create`. Authentication
hashes what was presented and looks the digest up: no secret is ever compared byte by byte, so
there is no timing signal to exploit (the configured admin key, the one secret held in memory, is
compared with `hmac.compare_digest`).

A small per-process cache (hash -> record, `cache_ttl` seconds, default 2) keeps the database off
the hot path; updates and deletes through this service drop the entry at once; on PostgreSQL every
process drops it as soon as the change commits (`forget`, fed by store._pg_notify), elsewhere other
processes see it within `cache_ttl`. Credit is not checked from the cache: the ledger's reservation does
that against the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from keeprouter.billing.budgets import next_reset
from keeprouter.billing.pricing import to_float
from keeprouter.errors import AuthenticationFailed, InvalidRequest, NotFound
from keeprouter.store.base import ADMIN_HASH, LIMIT_RESETS, KeyPatch, KeyRecord, KeyStore, LimitReset

KEY_PREFIX = "sk-kr-v1-"
_MAX_PRESENTED = 256  # longer than any key we issue; refuse before hashing megabytes
_CACHE_MAX = 10_000  # entries; cleared wholesale when full (only valid keys are ever cached)
_UNSET: Any = msgspec.UNSET


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def label_for(key: str) -> str:
    """ "sk-kr-v1-abc...wxyz", OpenRouter's style: recognisable, not usable."""
    return f"{key[: len(KEY_PREFIX) + 3]}...{key[-4:]}"


class KeyService:
    """Keys over a `KeyStore`. `clock` returns Unix seconds; `admin_key` is the configured admin
    secret, which authenticates to the stored "admin" row (`ensure_admin` creates it) with
    `is_admin=True`: unlimited, and metered like any key, so its generations are recorded too."""

    def __init__(
        self,
        store: KeyStore,
        clock: Callable[[], float] = time.time,
        *,
        admin_key: str | None = None,
        cache_ttl: float = 2.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._admin_key = admin_key
        self._cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, KeyRecord]] = {}
        self._admin = KeyRecord(hash=ADMIN_HASH, name="admin", label="admin", created_at=0.0, is_admin=True)

    async def ensure_admin(self) -> None:
        """Create the admin key's row if this database has none yet (idempotent)."""
        now = self._clock()
        record = await self._store.get_key(ADMIN_HASH, now)
        if record is None:
            record = KeyRecord(hash=ADMIN_HASH, name="admin", label="admin", created_at=now)
            await self._store.insert_key(record)
        self._admin = msgspec.structs.replace(self._admin, created_at=record.created_at)

    async def create(
        self,
        name: str,
        limit: Decimal | float | int | None = None,
        limit_reset: str | None = None,
        expires_at: float | str | None = None,
        rpm_limit: int | None = None,
        tpm_limit: int | None = None,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
        models: tuple[str, ...] = (),
        max_parallel_requests: int | None = None,
    ) -> tuple[str, KeyRecord]:
        """Make a key. Returns (the full key, shown only now; its record). Raises InvalidRequest
        naming the field at fault. The owner (`user_id`, `team_id`) and `models` come checked by the
        caller (`people.PeopleService.key_owner`, `people.models_field`)."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\x00" in name:
            raise InvalidRequest("name: required, at most 200 characters", param="name")
        now = self._clock()
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(
            hash=hash_key(key),
            name=name,
            label=label_for(key),
            created_at=now,
            limit=_limit(limit),
            limit_reset=_limit_reset(limit_reset),
            expires_at=_expiry(expires_at, now),
            rpm_limit=_rate("rpm_limit", rpm_limit),
            tpm_limit=_rate("tpm_limit", tpm_limit),
            user_id=user_id,
            team_id=team_id,
            models=models,
            max_parallel_requests=_rate("max_parallel_requests", max_parallel_requests),
        )
        await self._store.insert_key(record)
        return key, record

    async def authenticate(self, presented: str) -> KeyRecord:
        """The record of a live, enabled, unexpired key, or AuthenticationFailed (401)."""
        if not presented or len(presented) > _MAX_PRESENTED:
            raise AuthenticationFailed("Invalid API key")
        now = self._clock()
        if self._admin_key and hmac.compare_digest(presented.encode(), self._admin_key.encode()):
            return self._admin
        digest = hash_key(presented)
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._cache_ttl:
            record = cached[1]
        else:
            found = await self._store.get_key(digest, now)
            if found is None:
                self._cache.pop(digest, None)
                raise AuthenticationFailed("Invalid API key")
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (now, found)
            record = found
        if record.disabled:
            raise AuthenticationFailed("API key is disabled")
        if record.expires_at is not None and record.expires_at <= now:
            raise AuthenticationFailed("API key has expired")
        return record

    def forget(self, key_hash: str | None) -> None:
        """Drop the cached record of a key that changed (None: of every key)."""
        if key_hash is None:
            self._cache.clear()
        else:
            self._cache.pop(key_hash, None)

    async def session_record(self, key_hash: str) -> KeyRecord | None:
        """The record a console session signed in as, read afresh (never cached: a key disabled or
        deleted a moment ago must end its sessions now), or None when it may no longer sign in."""
        if key_hash == ADMIN_HASH:
            return self._admin if self._admin_key else None
        record = await self._store.get_key(key_hash, self._clock())
        if record is None or record.disabled:
            return None
        if record.expires_at is not None and record.expires_at <= self._clock():
            return None
        return record

    async def list(
        self,
        *,
        offset: int = 0,
        limit: int = 100,
        include_disabled: bool = True,
        user_id: str | None = None,
        team_id: str | None = None,
    ) -> list[KeyRecord]:
        """Live keys, oldest first; a user's or a team's alone when `user_id` or `team_id` is given."""
        return await self._store.list_keys(
            self._clock(),
            offset=max(offset, 0),
            limit=min(max(limit, 1), 1000),
            include_disabled=include_disabled,
            user_id=user_id,
            team_id=team_id,
        )

    async def get(self, key_hash: str) -> KeyRecord:
        """The live key with this hash, with current usage figures; NotFound otherwise."""
        record = await self._store.get_key(key_hash, self._clock())
        if record is None:
            raise NotFound("Key not found")
        return record

    async def update(
        self,
        key_hash: str,
        *,
        name: str = _UNSET,
        limit: Decimal | float | int | None = _UNSET,
        disabled: bool = _UNSET,
        limit_reset: str | None = _UNSET,
        expires_at: float | str | None = _UNSET,
        rpm_limit: int | None = _UNSET,
        tpm_limit: int | None = _UNSET,
        models: tuple[str, ...] = _UNSET,
        max_parallel_requests: int | None = _UNSET,
    ) -> KeyRecord:
        """Change the given fields (omitted ones stay; `limit=None` removes the limit, and so on)."""
        now = self._clock()
        patch = KeyPatch()
        if name is not _UNSET:
            if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\x00" in name:
                raise InvalidRequest("name: must be a non-empty string of at most 200 characters", param="name")
            patch = msgspec.structs.replace(patch, name=name)
        if limit is not _UNSET:
            patch = msgspec.structs.replace(patch, limit=_limit(limit))
        if disabled is not _UNSET:
            if not isinstance(disabled, bool):
                raise InvalidRequest("disabled: must be true or false", param="disabled")
            patch = msgspec.structs.replace(patch, disabled=disabled)
        if limit_reset is not _UNSET:
            patch = msgspec.structs.replace(patch, limit_reset=_limit_reset(limit_reset))
        if expires_at is not _UNSET:
            patch = msgspec.structs.replace(patch, expires_at=_expiry(expires_at, now))
        if rpm_limit is not _UNSET:
            patch = msgspec.structs.replace(patch, rpm_limit=_rate("rpm_limit", rpm_limit))
        if tpm_limit is not _UNSET:
            patch = msgspec.structs.replace(patch, tpm_limit=_rate("tpm_limit", tpm_limit))
        if models is not _UNSET:
            patch = msgspec.structs.replace(patch, models=models)
        if max_parallel_requests is not _UNSET:
            mpr = _rate("max_parallel_requests", max_parallel_requests)
            patch = msgspec.structs.replace(patch, max_parallel_requests=mpr)
        self._cache.pop(key_hash, None)
        record = await self._store.update_key(key_hash, patch, now)
        if record is None:
            raise NotFound("Key not found")
        return record

    async def delete(self, key_hash: str) -> None:
        """Revoke the key for good (its history stays); NotFound if there is no such live key."""
        self._cache.pop(key_hash, None)
        if not await self._store.delete_key(key_hash, self._clock()):
            raise NotFound("Key not found")

    @staticmethod
    def to_openrouter(record: KeyRecord, now: float | None = None) -> dict[str, Any]:
        """The `data` object of OpenRouter's GET /api/v1/key and /api/v1/keys, money as JSON numbers,
        plus the owner, the allowlist, the parallel limit and when the limit next resets."""
        remaining = record.limit_remaining
        resets = None if record.limit is None else next_reset(record.limit_reset, now or time.time())
        return {
            "hash": record.hash,
            "name": record.name,
            "label": record.label,
            "disabled": record.disabled,
            "limit": None if record.limit is None else to_float(record.limit),
            "limit_remaining": None if remaining is None else to_float(remaining),
            "limit_reset": record.limit_reset,
            "rpm_limit": record.rpm_limit,
            "tpm_limit": record.tpm_limit,
            "limit_reset_at": None if resets is None else iso(resets),
            "include_byok_in_limit": False,
            "user_id": record.user_id,
            "team_id": record.team_id,
            "models": list(record.models),
            "max_parallel_requests": record.max_parallel_requests,
            "usage": to_float(record.usage),
            "usage_daily": to_float(record.usage_daily),
            "usage_weekly": to_float(record.usage_weekly),
            "usage_monthly": to_float(record.usage_monthly),
            "byok_usage": 0.0,
            "byok_usage_daily": 0.0,
            "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0,
            "is_free_tier": False,
            "is_management_key": record.is_admin,
            "is_provisioning_key": record.is_admin,
            "created_at": iso(record.created_at),
            "updated_at": None if record.updated_at is None else iso(record.updated_at),
            "expires_at": None if record.expires_at is None else iso(record.expires_at),
        }


def iso(ts: float) -> str:
    """Unix seconds -> "2025-08-24T10:30:00.000Z" (UTC, as OpenRouter writes times)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _limit(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise InvalidRequest("limit: must be a number of USD, or null", param="limit")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))  # str(): 0.1 stays 0.1
    except InvalidOperation:
        raise InvalidRequest("limit: must be a number of USD, or null", param="limit") from None
    if not d.is_finite() or d < 0 or d > Decimal(1_000_000_000):
        raise InvalidRequest("limit: must be between 0 and 1e9 USD", param="limit")
    return d


def _limit_reset(value: object) -> LimitReset | None:
    if value is None:
        return None
    if value not in LIMIT_RESETS:
        raise InvalidRequest("limit_reset: must be daily, weekly, monthly or null", param="limit_reset")
    return value  # type: ignore[return-value]  # narrowed by the membership test


def _expiry(value: object, now: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidRequest("expires_at: must be an ISO 8601 UTC time", param="expires_at") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        ts = parsed.timestamp()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ts = float(value)
    else:
        raise InvalidRequest("expires_at: must be an ISO 8601 UTC time", param="expires_at")
    if ts <= now:
        raise InvalidRequest("expires_at: must be in the future", param="expires_at")
    return ts


MAX_RATE = 2**31 - 1  # fits every backend's INTEGER column


def _rate(field: str, value: object) -> int | None:
    """A per-minute rate limit: a whole number >= 1, or None (no limit). Disable a key to stop it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATE:
        raise InvalidRequest(f"{field}: must be a whole number from 1 to {MAX_RATE}, or null", param=field)
    return value
