"""The console's people page data (keeprouter.web.pages.people), pure: who sees which requests, the
request log's filters, the menu of each kind of session, a person's keys page, a team's page and the
operator's list of people."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from keeprouter.store.base import ActivityRow, GenerationFilter, KeyRecord, TeamRecord, UserRecord
from keeprouter.web.pages import people as pages
from keeprouter.web.pages.common import Link, Site

SITE = Site("KeepRouter", "http://127.0.0.1:1", dt.date(2026, 12, 2))
ADMIN = KeyRecord(hash="admin", name="admin", label="admin", created_at=0.0, is_admin=True)
PASTED = KeyRecord(hash="abc", name="k", label="sk-kr-v1-abc...wxyz", created_at=0.0)
MEMBER = UserRecord(id="u1", email="a@example.com", created_at=0.0, team_id="t1", limit=Decimal(5),
                    limit_usage=Decimal("1.25"), limit_reset="weekly")  # fmt: skip
LEAD = UserRecord(id="u2", email="lead@example.com", created_at=0.0, team_id="t1", team_admin=True)
TEAM = TeamRecord(id="t1", name="Research", created_at=0.0, limit=Decimal(100), limit_usage=Decimal(40),
                  limit_reset="monthly", usage=Decimal(70))  # fmt: skip


def person(user: UserRecord, is_admin: bool = False) -> KeyRecord:
    return KeyRecord(hash=f"user:{user.id}", name=user.email, label=user.email, created_at=0.0, is_admin=is_admin,
                     user_id=user.id, team_id=user.team_id)  # fmt: skip


def test_each_session_sees_its_own_requests_and_filters_only_narrow_them() -> None:
    assert pages.scope(ADMIN, None) == GenerationFilter()
    assert pages.scope(PASTED, None) == GenerationFilter(key_hash="abc")
    assert pages.scope(person(MEMBER), MEMBER) == GenerationFilter(user_id="u1")
    assert pages.scope(person(LEAD), LEAD) == GenerationFilter(team_id="t1")
    assert pages.scope(person(MEMBER), None) == GenerationFilter(id="")  # deleted a moment ago: nothing

    asked = pages.log_filter({"key": " k1 ", "model": "gpt-test", "other": "x", "team": ""})
    assert asked == GenerationFilter(key_hash="k1", model="gpt-test")
    assert pages.log_filter({"user": "u\x00"}) is None and pages.log_filter({"team": "t" * 201}) is None
    assert pages.narrow(GenerationFilter(), asked) == asked  # the operator: anything asked
    assert pages.narrow(GenerationFilter(user_id="u1"), asked) == GenerationFilter(key_hash="k1", user_id="u1",
                                                                                   model="gpt-test")  # fmt: skip
    # another team's requests show nothing, never the asker's own instead
    assert pages.narrow(GenerationFilter(team_id="t1"), GenerationFilter(team_id="t2")) is None
    assert pages.narrow(GenerationFilter(team_id="t1"), None) is None
    assert pages.log_url(team="t 1", model="") == "/console/logs?team=t+1"
    assert pages.log_filters_offered(ADMIN, None) == ("key", "user", "team", "model")
    assert pages.log_filters_offered(PASTED, None) == ("model",)
    assert pages.log_filters_offered(person(MEMBER), MEMBER) == ("key", "model")
    assert pages.log_filters_offered(person(LEAD), LEAD) == ("key", "user", "model")


def test_the_menu_of_each_kind_of_session() -> None:
    def titles(record: KeyRecord, user: UserRecord | None) -> list[str]:
        return [t for t, _ in pages.nav(record, user)]

    assert titles(PASTED, None) == ["Usage", "Request log"]
    assert titles(ADMIN, None) == ["Usage", "Request log", "Keys", "People", "Providers"]
    assert titles(person(MEMBER), MEMBER) == ["Your keys", "Request log"]
    assert dict(pages.nav(person(LEAD), LEAD))["Team"] == "/console/teams/t1"
    ops = UserRecord(id="u9", email="ops@example.com", created_at=0.0)
    assert titles(person(ops, True), ops) == ["Usage", "Your keys", "Request log", "Keys", "People", "Providers"]


def test_a_persons_keys_page_counts_keys_and_links_each_to_its_requests() -> None:
    keys = [
        KeyRecord(
            hash=f"h{i}",
            name=f"k{i}",
            label=f"sk-kr-v1-{i}",
            created_at=0.0,
            user_id="u1",
            usage=Decimal("0.5"),
            usage_daily=Decimal("0.25"),
            disabled=i == 1,
        )
        for i in range(2)
    ]
    page = pages.me(SITE, "tok", MEMBER, TEAM, keys, 3, False)
    assert [t for t, _ in page.budgets] == ["Your budget", "Team Research"]
    assert page.budgets[0][1].remaining == "$3.75" and page.budgets[0][1].renews == "every Monday (UTC)"
    assert page.budgets[1][1].used == "$40.00"
    first = page.keys.rows[0]
    assert first[0] == Link("k0", "/console/logs?key=h0", "") and first[2] == "active" and first[5] == "$0.25"
    assert page.keys.rows[1][2] == "disabled"
    assert page.revocable == (("h0", "k0"), ("h1", "k1")) and page.can_create
    assert page.note == "You hold 2 of at most 3 keys." and page.log == "/console/logs?user=u1"
    full = pages.me(SITE, "tok", MEMBER, None, keys, 2, False)
    assert not full.can_create and "revoke one" in full.note and len(full.budgets) == 1
    off = pages.me(SITE, "tok", MEMBER, None, [], 0, False)
    assert not off.can_create and "operator" in off.note


def test_a_teams_page_has_its_usage_per_day_members_and_keys() -> None:
    rows = [ActivityRow(date=d, model=m, provider="p", requests=n, prompt_tokens=100 * n, completion_tokens=10 * n,
                        reasoning_tokens=0, usage=Decimal("0.01") * n)
            for d, m, n in (("2026-11-30", "gpt-test", 2), ("2026-11-30", "claude-test", 1),
                            ("2026-12-01", "gpt-test", 4))]  # fmt: skip
    service = KeyRecord(hash="s1", name="ci", label="sk-kr-v1-s", created_at=0.0, team_id="t1")
    mine = KeyRecord(hash="h1", name="laptop", label="sk-kr-v1-h", created_at=0.0, user_id="u1", team_id="t1",
                     disabled=True)  # fmt: skip
    page = pages.team(SITE, "tok", False, TEAM, [MEMBER, LEAD], [mine, service], rows)
    assert page.title == "Team Research" and page.log == "/console/logs?team=t1"
    assert page.budget.used == "$40.00" and page.budget.remaining == "$60.00"
    assert page.by_day.rows == (("2026-12-01", "4", "440", "$0.04"), ("2026-11-30", "3", "330", "$0.03"))
    assert {s.name for s in page.spend_chart.series} == {"gpt-test", "claude-test"}
    assert page.members.rows[0][0] == Link("a@example.com", "/console/logs?user=u1", "")
    assert [r[1] for r in page.members.rows] == ["member", "team admin"]
    assert [(r[2], r[3]) for r in page.keys.rows] == [("a@example.com", "disabled"), ("service key", "active")]
    assert page.key_forms == (("h1", "laptop", True), ("s1", "ci", False))
    assert page.manage == "/console/teams/t1/keys"
    assert pages.team(SITE, "tok", False, TEAM, [], [], []).spend_chart.empty


def test_the_operators_people_page_links_each_team_and_user() -> None:
    loner = UserRecord(id="u3", email="solo@example.com", created_at=0.0)
    page = pages.people(SITE, "tok", [TEAM], [MEMBER, loner])
    assert page.teams.rows[0][0] == Link("Research", "/console/teams/t1", "")
    assert page.teams.rows[0][-1] == Link("requests", "/console/logs?team=t1", "")
    assert page.users.rows[0][1] == Link("Research", "/console/teams/t1", "") and page.users.rows[1][1] == "—"
    assert page.users.rows[1][-1] == Link("requests", "/console/logs?user=u3", "")
