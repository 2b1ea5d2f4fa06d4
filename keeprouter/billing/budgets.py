"""Budgets above a key: its user's and its team's, and when a limit period next resets.

The store reserves on a key, its user and its team in one step (see `store.base.LedgerStore`);
this module only explains a refusal afterwards (which budget would go over) and does the calendar
arithmetic of periods, both off the hot path.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from keeprouter.errors import InsufficientCredit, RateLimited
from keeprouter.store.base import SECONDS_PER_DAY, ZERO, Budget, PeopleStore, periods


def next_reset(limit_reset: str | None, now: float) -> float | None:
    """When a limit with this `limit_reset` next starts afresh (Unix seconds, a UTC midnight; weeks
    start on Monday), or None for an all-time limit."""
    p = periods(now)
    if limit_reset == "daily":
        return float((p.day + 1) * SECONDS_PER_DAY)
    if limit_reset == "weekly":
        return float((p.week + 7) * SECONDS_PER_DAY)
    if limit_reset == "monthly":
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        first = dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)
        return dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC).timestamp()
    return None


def over(budget: Budget, amount: Decimal) -> bool:
    """Would holding `amount` more take this budget past its limit?"""
    return budget.limit is not None and budget.limit_usage + budget.reserved + amount > budget.limit


async def owner_refusal(
    store: PeopleStore, user_id: str | None, team_id: str | None, amount: Decimal, now: float
) -> InsufficientCredit | None:
    """The 402 naming the user's or team's budget that cannot cover `amount`, or None when neither
    is short now (the key itself was, or the moment has passed)."""
    user = None if user_id is None else await store.get_user(user_id, now)
    team = None if team_id is None else await store.get_team(team_id, now)
    for kind, budget in (("user", user), ("team", team)):
        if budget is not None and over(budget, amount):
            limit = budget.limit or ZERO
            available = max(limit - budget.limit_usage - budget.reserved, ZERO)
            period = f" {budget.limit_reset}" if budget.limit_reset else ""
            return InsufficientCredit(
                f"{kind.capitalize()} budget exceeded: this request may cost up to ${amount:f} and"
                f" ${available:f} of the {kind}'s ${limit:f}{period} budget is available. Ask an"
                f" admin to raise the {kind} budget, wait for it to reset, or lower max_tokens.",
                metadata={"limit_source": f"{kind}_limit", "budget": kind, "budget_id": budget.id},
            )
    return None


def parallel_refusal(limit: int) -> RateLimited:
    """The 429 for a key with `limit` requests already in flight (a slot frees when one ends)."""
    err = RateLimited(
        f"parallel request limit exceeded: max_parallel_requests of {limit} requests in flight for this key;"
        " retry when one of them has finished",
        retry_after="1",
        metadata={"limit_source": "max_parallel_requests"},
    )
    err.headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0"}
    return err
