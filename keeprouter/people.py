"""Teams and users: validation, creation and their JSON shapes (the admin API and the CLI use this).

A team or user has a budget like a key's (`limit` USD per `limit_reset` period or all time), a model
allowlist (`models`; empty = every model) and `rpm_limit`. A user belongs to at most one team and
may be its admin (`team_admin`). Every refusal names the field at fault.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec

from keeprouter.billing.budgets import next_reset
from keeprouter.billing.pricing import to_float
from keeprouter.errors import InvalidRequest, NotFound
from keeprouter.keys import KeyService, _limit, _limit_reset, _rate, iso
from keeprouter.store.base import Budget, BudgetPatch, KeyRecord, PeopleStore, TeamRecord, UserRecord

TEAM_FIELDS = ("name", "limit", "limit_reset", "models", "rpm_limit")
USER_FIELDS = ("email", "team_id", "limit", "limit_reset", "models", "rpm_limit", "team_admin")
MAX_MODELS = 1000
# Deliberately loose: the identity provider, not us, decides what an address is; this only refuses
# what cannot be one (and what would break a log line or a header).
_EMAIL = re.compile(r"^[^@\s\x00-\x1f]{1,200}@[^@\s\x00-\x1f]{1,200}$")


def fields(body: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """The body's fields, or InvalidRequest naming the first unknown one (a misspelt limit must never
    be dropped silently)."""
    for f in body:
        if f not in known:
            raise InvalidRequest(f"unknown field {f!r} (accepted: {', '.join(known)})", param=f[:100])
    return dict(body)


def models_field(value: object) -> tuple[str, ...]:
    """An allowlist: a list of model ids (empty or null = every model)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_MODELS:
        raise InvalidRequest(f"models: must be a list of at most {MAX_MODELS} model ids", param="models")
    for m in value:
        if not isinstance(m, str) or not m.strip() or len(m) > 200 or "\x00" in m:
            raise InvalidRequest("models: each entry must be a model id of at most 200 characters", param="models")
    return tuple(dict.fromkeys(m.strip() for m in value))


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200 or "\x00" in value:
        raise InvalidRequest("name: required, at most 200 characters", param="name")
    return value.strip()


def _email(value: object) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise InvalidRequest("email: required, an email address", param="email")
    return value.strip()


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest(f"{field}: must be true or false", param=field)
    return value


def _budget_patch(values: dict[str, Any]) -> dict[str, Any]:
    """Validated budget fields present in `values`, as BudgetPatch/record keyword arguments."""
    out: dict[str, Any] = {}
    if "limit" in values:
        out["limit"] = _limit(values["limit"])
    if "limit_reset" in values:
        out["limit_reset"] = _limit_reset(values["limit_reset"])
    if "models" in values:
        out["models"] = models_field(values["models"])
    if "rpm_limit" in values:
        out["rpm_limit"] = _rate("rpm_limit", values["rpm_limit"])
    return out


class PeopleService:
    """Teams and users over a `PeopleStore`; `clock` returns Unix seconds."""

    def __init__(self, store: PeopleStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def _team_id(self, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or await self._store.get_team(value, self._clock()) is None:
            raise InvalidRequest(f"team_id: no team {str(value)[:80]!r}", param="team_id")
        return value

    async def key_owner(self, user_id: object, team_id: object) -> tuple[str | None, str | None]:
        """A new key's (user_id, team_id): a user's key is in the user's team (a different team_id is
        refused); a team_id alone makes a team's service key."""
        if user_id is None:
            return None, await self._team_id(team_id)
        user = None if not isinstance(user_id, str) else await self._store.get_user(user_id, self._clock())
        if user is None:
            raise InvalidRequest(f"user_id: no user {str(user_id)[:80]!r}", param="user_id")
        if team_id is not None and team_id != user.team_id:
            raise InvalidRequest("team_id: a user's key belongs to the user's team; leave team_id out", param="team_id")
        return user.id, user.team_id

    async def create_team(self, values: dict[str, Any]) -> TeamRecord:
        now = self._clock()
        team = TeamRecord(
            id=f"team_{secrets.token_hex(8)}", name=_name(values.get("name")), created_at=now,
            **_budget_patch(values),
        )  # fmt: skip
        await self._store.insert_team(team)
        return team

    async def create_user(self, values: dict[str, Any]) -> UserRecord:
        now = self._clock()
        email = _email(values.get("email"))
        user = UserRecord(
            id=f"user_{secrets.token_hex(8)}", email=email, created_at=now,
            team_id=await self._team_id(values.get("team_id")),
            team_admin=_flag("team_admin", values.get("team_admin", False)), **_budget_patch(values),
        )  # fmt: skip
        if user.team_admin and user.team_id is None:
            raise InvalidRequest("team_admin: a team admin needs a team_id", param="team_admin")
        try:
            await self._store.insert_user(user)
        except ValueError:
            raise InvalidRequest(f"email: a user with {email!r} already exists", param="email") from None
        return user

    async def get_team(self, team_id: str) -> TeamRecord:
        team = await self._store.get_team(team_id, self._clock())
        if team is None:
            raise NotFound(f"team {team_id[:80]!r} not found")
        return team

    async def get_user(self, user_id: str) -> UserRecord:
        user = await self._store.get_user(user_id, self._clock())
        if user is None:
            raise NotFound(f"user {user_id[:80]!r} not found")
        return user

    async def list_teams(self, *, offset: int = 0, limit: int = 100) -> list[TeamRecord]:
        return await self._store.list_teams(self._clock(), offset=max(offset, 0), limit=min(max(limit, 1), 1000))

    async def list_users(self, *, team_id: str | None = None, offset: int = 0, limit: int = 100) -> list[UserRecord]:
        return await self._store.list_users(
            self._clock(), team_id=team_id, offset=max(offset, 0), limit=min(max(limit, 1), 1000)
        )

    async def update_team(self, team_id: str, values: dict[str, Any]) -> TeamRecord:
        patch = BudgetPatch(**_budget_patch(values))
        if "name" in values:
            patch = msgspec.structs.replace(patch, name=_name(values["name"]))
        team = await self._store.update_team(team_id, patch, self._clock())
        if team is None:
            raise NotFound(f"team {team_id[:80]!r} not found")
        return team

    async def update_user(self, user_id: str, values: dict[str, Any]) -> UserRecord:
        patch = BudgetPatch(**_budget_patch(values))
        if "email" in values:
            patch = msgspec.structs.replace(patch, email=_email(values["email"]))
        if "team_id" in values:
            patch = msgspec.structs.replace(patch, team_id=await self._team_id(values["team_id"]))
        if "team_admin" in values:
            patch = msgspec.structs.replace(patch, team_admin=_flag("team_admin", values["team_admin"]))
        try:
            user = await self._store.update_user(user_id, patch, self._clock())
        except ValueError:
            raise InvalidRequest("email: another user already has this email", param="email") from None
        if user is None:
            raise NotFound(f"user {user_id[:80]!r} not found")
        return user

    async def delete_team(self, team_id: str) -> None:
        try:
            done = await self._store.delete_team(team_id, self._clock())
        except ValueError as e:
            raise InvalidRequest(f"team {team_id[:80]!r}: {e}", status=409) from None
        if not done:
            raise NotFound(f"team {team_id[:80]!r} not found")

    async def delete_user(self, user_id: str) -> None:
        """Delete the user and disable every key they own."""
        if not await self._store.delete_user(user_id, self._clock()):
            raise NotFound(f"user {user_id[:80]!r} not found")

    def to_json(self, rec: TeamRecord | UserRecord) -> dict[str, Any]:
        out: dict[str, Any] = {"id": rec.id}
        if isinstance(rec, TeamRecord):
            out["name"] = rec.name
        else:
            out.update(email=rec.email, team_id=rec.team_id, team_admin=rec.team_admin)
        out.update(budget_json(rec, self._clock()))
        return out


def budget_json(rec: Budget, now: float) -> dict[str, Any]:
    remaining = rec.limit_remaining
    resets = next_reset(rec.limit_reset, now) if rec.limit is not None else None
    return {
        "limit": None if rec.limit is None else to_float(rec.limit),
        "limit_remaining": None if remaining is None else to_float(remaining),
        "limit_reset": rec.limit_reset,
        "limit_reset_at": None if resets is None else iso(resets),
        "usage": to_float(rec.usage),
        "limit_usage": to_float(rec.limit_usage),
        "reserved": to_float(rec.reserved),
        "models": list(rec.models),
        "rpm_limit": rec.rpm_limit,
        "created_at": iso(rec.created_at),
        "updated_at": None if rec.updated_at is None else iso(rec.updated_at),
    }


async def create_own_key(
    keys: KeyService, store: PeopleStore, user: UserRecord, values: dict[str, Any], most: int, now: float
) -> tuple[str, KeyRecord]:
    """A signed-in person's own key ("Get an API key"): `name`, and optionally `limit` and
    `limit_reset`. At most `most` keys per person (revoking one frees its place; a disabled one
    still counts, so disabling is not undone by making another). A key's own limit may not exceed
    what the person's budget, or their team's, has left; without one the key is bounded by those
    budgets alone, which admission checks on every request anyway. The key is the person's and in
    their team. Two requests at the same instant may both pass the count (at most one key over)."""
    if most <= 0:
        raise InvalidRequest("keys are made by the operator on this server (auth.oidc.max_keys_per_user is 0)")
    held = await keys.list(user_id=user.id, limit=most)
    if len(held) >= most:
        raise InvalidRequest(f"you hold {len(held)} keys, the most allowed here: revoke one first", param="name")
    limit = _limit(values.get("limit"))
    team = None if user.team_id is None else await store.get_team(user.team_id, now)
    for whose, budget in (("your budget", user), ("your team's budget", team)):
        left = None if budget is None else budget.limit_remaining
        if limit is not None and left is not None and limit > left:
            raise InvalidRequest(f"limit: at most {to_float(left)} USD, what {whose} has left", param="limit")
    name = values.get("name")
    return await keys.create(
        name.strip() if isinstance(name, str) else name,  # type: ignore[arg-type]  # create refuses a non-str
        limit=limit, limit_reset=_limit_reset(values.get("limit_reset")), user_id=user.id, team_id=user.team_id,
    )  # fmt: skip
