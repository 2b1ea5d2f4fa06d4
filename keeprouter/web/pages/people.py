"""The console's people pages as data: who may see which requests, the console's menu, a person's
own keys ("Get an API key"), a team's page (its usage per day, members and keys) and the operator's
list of teams and users.

Pure: the handlers (web/console_people.py) fetch the records; every figure is formatted here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from keeprouter.store.base import ActivityRow, GenerationFilter, KeyRecord, TeamRecord, UserRecord
from keeprouter.web import format as f
from keeprouter.web.charts import Chart, Table, stacked_bars
from keeprouter.web.pages.common import Link, Site
from keeprouter.web.pages.console import Credit, credit

USER_PREFIX = "user:"  # a session of a person signed in with OpenID Connect (web/oidc.py)
LOG_FILTERS = ("key", "user", "team", "model")  # the request log's query parameters
_FILTER_FIELD = {"key": "key_hash", "user": "user_id", "team": "team_id", "model": "model"}
_MAX_FILTER = 200  # longer than any id, hash or model id we issue


def is_person(record: KeyRecord) -> bool:
    return record.hash.startswith(USER_PREFIX)


def scope(record: KeyRecord, user: UserRecord | None) -> GenerationFilter:
    """The requests a session may see: the operator every one; a team admin their team's keys'; a
    person their own keys'; a key signed in by pasting it, its own."""
    if record.is_admin:
        return GenerationFilter()
    if is_person(record):
        if user is None:  # resolved a moment ago; gone since: nothing
            return GenerationFilter(id="")
        if user.team_admin and user.team_id is not None:
            return GenerationFilter(team_id=user.team_id)
        return GenerationFilter(user_id=user.id)
    return GenerationFilter(key_hash=record.hash)


def log_filter(query: Mapping[str, str]) -> GenerationFilter | None:
    """The filters asked for in the request log's query; None when one cannot match anything."""
    wanted: dict[str, str] = {}
    for name in LOG_FILTERS:
        value = query.get(name, "").strip()
        if not value:
            continue
        if len(value) > _MAX_FILTER or "\x00" in value:  # PostgreSQL refuses NUL in text
            return None
        wanted[_FILTER_FIELD[name]] = value
    return GenerationFilter(**wanted)


def log_filters_offered(record: KeyRecord, user: UserRecord | None) -> tuple[str, ...]:
    """The request log's filters worth offering this session (the others could only narrow to
    nothing): the operator every one, a team admin key, user and model, a person key and model."""
    if record.is_admin:
        return LOG_FILTERS
    if user is None:
        return ("model",)
    return ("key", "user", "model") if user.team_admin and user.team_id is not None else ("key", "model")


def narrow(allowed: GenerationFilter, wanted: GenerationFilter | None) -> GenerationFilter | None:
    """Both at once: what was asked for, within what the session may see; None when they disagree
    (asking for another team's requests shows none, never the asker's own instead)."""
    if wanted is None:
        return None
    out: dict[str, str | None] = {}
    for name in ("key_hash", "user_id", "team_id", "model", "id"):
        a, w = getattr(allowed, name), getattr(wanted, name)
        if a is not None and w is not None and a != w:
            return None
        out[name] = a if a is not None else w
    return GenerationFilter(**out)


def log_url(**filters: str) -> str:
    """The request log filtered by key, user, team or model."""
    return "/console/logs?" + urlencode({k: v for k, v in filters.items() if v})


def nav(record: KeyRecord, user: UserRecord | None) -> tuple[tuple[str, str], ...]:
    """The console menu of this session: (title, href)."""
    out = [("Your keys", "/console/me")] if user is not None else []
    if record.is_admin or not is_person(record):
        out.insert(0, ("Usage", "/console"))
    out.append(("Request log", "/console/logs"))
    if user is not None and user.team_admin and user.team_id is not None:
        out.append(("Team", f"/console/teams/{user.team_id}"))
    if record.is_admin:
        out += [("Keys", "/console/keys"), ("People", "/console/people"), ("Providers", "/console/providers")]
    return tuple(out)


def _state(k: KeyRecord) -> str:
    return "disabled" if k.disabled else "active"


@dataclass(frozen=True, slots=True)
class MePage:
    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    email: str
    budgets: tuple[tuple[str, Credit], ...]  # ("Your budget" | "Team <name>", figures)
    keys: Table
    revocable: tuple[tuple[str, str], ...]  # (hash, name) of each key, for its revoke form
    can_create: bool
    note: str  # how many keys are held and how many may be
    log: str  # the person's request log


def me(
    site: Site, csrf: str, user: UserRecord, team: TeamRecord | None, keys: Sequence[KeyRecord], most: int,
    is_admin: bool,
) -> MePage:  # fmt: skip
    budgets = [("Your budget", credit(user))] + ([(f"Team {team.name}", credit(team))] if team else [])
    rows = tuple(
        (Link(k.name, log_url(key=k.hash), ""), k.label, _state(k), credit(k).used, credit(k).limit,
         f.usd(k.usage_daily), f.usd(k.usage_weekly), f.usd(k.usage_monthly), f.usd(k.usage))
        for k in keys
    )  # fmt: skip
    table = Table(("Name (its requests)", "Key", "State", "Used", "Limit", "Today", "This week", "This month",
                   "All time"), rows)  # fmt: skip
    if most <= 0:
        note = "Keys are made by the operator of this server; ask them for one."
    elif len(keys) >= most:
        note = f"You hold {len(keys)} of at most {most} keys: revoke one to make another."
    else:
        note = f"You hold {len(keys)} of at most {most} keys."
    return MePage(site, "/console/me", "Your API keys", csrf, is_admin, user.email, tuple(budgets), table,
                  tuple((k.hash, k.name) for k in keys), 0 < most and len(keys) < most, note,
                  log_url(user=user.id))  # fmt: skip


@dataclass(frozen=True, slots=True)
class TeamPage:
    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    budget: Credit
    spend_chart: Chart
    by_day: Table
    members: Table
    keys: Table
    key_forms: tuple[tuple[str, str, bool], ...]  # (hash, name, disabled) for disable/enable
    manage: str  # the forms' action prefix
    log: str  # the team's request log


def _days(rows: Sequence[ActivityRow]) -> Table:
    per: dict[str, list[int | Decimal]] = {}
    for r in rows:
        day = per.setdefault(r.date, [0, 0, Decimal(0)])
        day[0] += r.requests
        day[1] += r.prompt_tokens + r.completion_tokens
        day[2] += r.usage
    return Table(("Date", "Requests", "Tokens", "Spend"),
                 tuple((d, f.count(int(v[0])), f.count(int(v[1])), f.usd(Decimal(v[2])))
                       for d, v in sorted(per.items(), reverse=True)))  # fmt: skip


def _spend_by_model(rows: Sequence[ActivityRow]) -> list[tuple[str, dict[dt.date, float]]]:
    out: dict[str, dict[dt.date, float]] = {}
    for r in rows:
        per = out.setdefault(r.model, {})
        day = dt.date.fromisoformat(r.date)
        per[day] = per.get(day, 0.0) + float(r.usage)
    return sorted(out.items())


def team(
    site: Site, csrf: str, is_admin: bool, t: TeamRecord, members: Sequence[UserRecord], keys: Sequence[KeyRecord],
    activity: Sequence[ActivityRow],
) -> TeamPage:  # fmt: skip
    by_day = _days(activity)
    chart = stacked_bars("team-spend-chart", "Team spend per day by model (last 30 days)", _spend_by_model(activity),
                         lambda x: f.usd(Decimal(str(round(x, 9)))), by_day)  # fmt: skip
    people = tuple(
        (Link(u.email, log_url(user=u.id), ""), "team admin" if u.team_admin else "member", credit(u).used,
         credit(u).limit, credit(u).remaining, f.usd(u.usage))
        for u in members
    )  # fmt: skip
    emails = {u.id: u.email for u in members}
    key_rows = tuple(
        (Link(k.name, log_url(key=k.hash), ""), k.label, emails.get(k.user_id or "", "service key"), _state(k),
         credit(k).used, credit(k).limit, f.usd(k.usage_daily), f.usd(k.usage))
        for k in keys
    )  # fmt: skip
    return TeamPage(
        site, f"/console/teams/{t.id}", f"Team {t.name}", csrf, is_admin, credit(t), chart, by_day,
        Table(("Member (their requests)", "Role", "Used", "Limit", "Remaining", "All time"), people),
        Table(("Key (its requests)", "Key", "Owner", "State", "Used", "Limit", "Today", "All time"), key_rows),
        tuple((k.hash, k.name, k.disabled) for k in keys), f"/console/teams/{t.id}/keys", log_url(team=t.id),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PeoplePage:
    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    teams: Table
    users: Table


def people(site: Site, csrf: str, teams: Sequence[TeamRecord], users: Sequence[UserRecord]) -> PeoplePage:
    """The operator's list of every team and user, each linked to its page and its requests."""
    names = {t.id: t.name for t in teams}
    team_rows = tuple(
        (Link(t.name, f"/console/teams/{t.id}", ""), credit(t).used, credit(t).limit, credit(t).remaining,
         t.limit_reset or f.DASH, f.usd(t.usage), Link("requests", log_url(team=t.id), ""))
        for t in teams
    )  # fmt: skip
    user_rows = tuple(
        (u.email, Link(names[u.team_id], f"/console/teams/{u.team_id}", "") if u.team_id in names else f.DASH,
         "yes" if u.team_admin else "no", credit(u).used, credit(u).limit, f.usd(u.usage),
         Link("requests", log_url(user=u.id), ""))
        for u in users
    )  # fmt: skip
    return PeoplePage(
        site, "/console/people", "People", csrf, True,
        Table(("Team", "Used", "Limit", "Remaining", "Resets", "All time", "Log"), team_rows),
        Table(("User", "Team", "Team admin", "Used", "Limit", "All time", "Log"), user_rows),
    )  # fmt: skip
