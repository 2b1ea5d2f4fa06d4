"""What a key's user and team allow, checked before a request is admitted: model allowlists (403)
and per-minute request limits (429). Budgets are not here: the ledger reserves on the key, its user
and its team in one step (store.base.LedgerStore.reserve).

Allowlists intersect: a model must be in every non-empty list of the key, its user and its team.
The refusal is 403, not 404: the model exists and other callers may use it, and OpenAI's and
Anthropic's SDKs both map 403 to a permission error that says so, where a 404 would send the user
looking for a typo in the model name.

A user's or team's `rpm_limit` is counted by the same rate limiter as keys' (Redis when shared),
under the names "user:<id>" and "team:<id>", so it holds across every key they own.

Users and teams are read through a small cache (`ttl` seconds, 2 by default, like the key cache):
a changed allowlist or limit applies within that time, and keys without an owner never read it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from keeprouter.billing.ledger import Ledger
from keeprouter.errors import PermissionDenied
from keeprouter.limits.base import Limits, RateLimiter, Refusal, Ticket
from keeprouter.store.base import Budget, KeyRecord

_CACHE_MAX = 10_000


class OwnerPolicy:
    def __init__(
        self, ledger: Ledger, limiter: RateLimiter, clock: Callable[[], float] = time.time, ttl: float = 2.0
    ) -> None:
        self._ledger = ledger  # its store is read when first needed (tests build gateways without one)
        self._limiter = limiter
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Budget | None]] = {}

    async def _owner(self, kind: str, owner_id: str, now: float) -> Budget | None:
        name = f"{kind}:{owner_id}"
        hit = self._cache.get(name)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        found: Budget | None
        if kind == "user":
            found = await self._ledger.store.get_user(owner_id, now)
        else:
            found = await self._ledger.store.get_team(owner_id, now)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[name] = (now, found)
        return found

    async def owners(self, key: KeyRecord) -> list[tuple[str, Budget]]:
        """The key's user and team records, as ("user" | "team", record)."""
        now = self._clock()
        out: list[tuple[str, Budget]] = []
        for kind, owner_id in (("user", key.user_id), ("team", key.team_id)):
            if owner_id is not None:
                found = await self._owner(kind, owner_id, now)
                if found is not None:
                    out.append((kind, found))
        return out

    @asynccontextmanager
    async def admitted(self, key: KeyRecord, model_ids: Sequence[str], ticket_id: str) -> AsyncIterator[None]:
        """Refuse a model outside the allowlists (403) or a user or team over its rpm_limit (429);
        the rate entries taken here are given back if the body raises (the request was refused
        further on, e.g. for credit, and never reached an upstream)."""
        owners = await self.owners(key) if key.user_id is not None or key.team_id is not None else []
        lists = [("key", key.models)] + [(kind, rec.models) for kind, rec in owners]
        for model_id in dict.fromkeys(model_ids):
            for kind, allowed in lists:
                if allowed and model_id not in allowed:
                    raise PermissionDenied(
                        f"model '{model_id}' is not allowed for this {kind} (its models allowlist);"
                        " ask an admin to add it",
                        param="model",
                        metadata={"limit_source": f"{kind}_models", "model": model_id},
                    )
        tickets: list[Ticket] = []
        try:
            for kind, rec in owners:
                if rec.rpm_limit is None:
                    continue
                admitted = await self._limiter.admit(ticket_id, f"{kind}:{rec.id}", Limits(rec.rpm_limit, None), 0)
                if isinstance(admitted, Refusal):
                    err = admitted.error()
                    err.message = (
                        f"rate limit exceeded: rpm_limit of {rec.rpm_limit} requests per minute for this {kind}"
                    )
                    err.args = (err.message,)
                    raise err
                tickets.append(admitted)
            yield
        except BaseException:
            for ticket in tickets:
                await self._limiter.release(ticket)
            raise
