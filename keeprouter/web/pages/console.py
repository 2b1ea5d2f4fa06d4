"""The console's page data: a key's credit, usage per day by model, and its request log.

Pure builders over records the handlers fetched (only ever the signed-in key's rows, or for the
admin any key's), every figure formatted by web.format like the public pages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, urlencode

from keeprouter.keys import iso
from keeprouter.store.base import ActivityRow, Budget, CacheUsageRow, GenerationRecord, KeyRecord
from keeprouter.web import format as f
from keeprouter.web.charts import Chart, Table, stacked_bars
from keeprouter.web.pages import cache_share
from keeprouter.web.pages.common import Link, Site

RESETS = {"daily": "every UTC day", "weekly": "every Monday (UTC)", "monthly": "on the 1st of each month (UTC)"}


@dataclass(frozen=True, slots=True)
class Credit:
    used: str
    limit: str
    remaining: str
    renews: str  # "" when the limit never renews


@dataclass(frozen=True, slots=True)
class Overview:
    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    key: str  # the key's label
    credit: Credit
    spend_chart: Chart
    tokens_chart: Chart
    requests_chart: Chart
    by_model: Table
    cache_since: str  # this month's first day: the prompt-cache tables cover it to today
    cache_by_model: Table
    cache_by_key: Table  # every key's line, for the admin looking at all of them (else empty)


@dataclass(frozen=True, slots=True)
class Logs:
    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    table: Table
    older: str  # URL of the next (older) page, "" at the end
    filters: tuple[tuple[str, str, str], ...] = ()  # (query name, label, value) of the filter form


@dataclass(frozen=True, slots=True)
class Detail:
    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    facts: Table
    attempts: Table


def credit(record: KeyRecord | Budget) -> Credit:
    """A key's, a user's or a team's budget figures (they share the fields)."""
    if record.limit is None:
        return Credit(f.usd(record.usage), "none", "unlimited", "")
    remaining = record.limit_remaining or Decimal(0)
    renews = RESETS.get(record.limit_reset or "", "")
    return Credit(f.usd(record.limit_usage), f.usd(record.limit), f.usd(remaining), renews)


def _per_model(rows: Sequence[ActivityRow], value: str) -> list[tuple[str, dict[dt.date, float]]]:
    out: dict[str, dict[dt.date, float]] = {}
    for r in rows:
        day = dt.date.fromisoformat(r.date)
        v = {"spend": float(r.usage), "tokens": r.prompt_tokens + r.completion_tokens, "requests": r.requests}[value]
        per = out.setdefault(r.model, {})
        per[day] = per.get(day, 0.0) + v
    return sorted(out.items())


def overview(
    site: Site, record: KeyRecord, rows: Sequence[ActivityRow], csrf: str, is_admin: bool,
    cache: Sequence[CacheUsageRow] = (), key_names: Mapping[str, str] | None = None,
) -> Overview:  # fmt: skip
    """`cache`: this month's prompt-cache rows of what the page shows (the key's, or every key's
    for the admin, who then gets a line per key too, named by `key_names`)."""
    ordered = sorted(rows, key=lambda r: (r.date, r.model, r.provider))
    table = Table(
        ("Date", "Model", "Provider", "Requests", "Prompt tokens", "Completion tokens", "Spend"),
        tuple((r.date, r.model, r.provider, f.count(r.requests), f.count(r.prompt_tokens),
               f.count(r.completion_tokens), f.usd(r.usage)) for r in ordered),
    )  # fmt: skip
    charts = [
        stacked_bars(f"{v}-chart", title, _per_model(rows, v), fmt, table)
        for v, title, fmt in (
            ("spend", "Spend per day by model", lambda x: f.usd(Decimal(str(round(x, 9))))),
            ("tokens", "Tokens per day by model", lambda x: f.tokens(round(x))),
            ("requests", "Requests per day by model", lambda x: f.count(round(x))),
        )
    ]
    per_key = cache_share.by_key(cache, key_names) if key_names is not None else Table(("Key",), ())
    return Overview(site, "/console", f"Console: {record.name}", csrf, is_admin, record.label, credit(record),
                    charts[0], charts[1], charts[2], table, cache_share.month_start(site.today).isoformat(),
                    cache_share.by_model(cache), per_key)  # fmt: skip


def _ms(v: int | None) -> str:
    return f.DASH if v is None else f"{v:,} ms"


FILTER_LABELS = {"key": "Key (hash)", "user": "User id", "team": "Team id", "model": "Model"}


def logs(
    site: Site, gens: Sequence[GenerationRecord], page_size: int, csrf: str, is_admin: bool,
    filters: Mapping[str, str] | None = None, keys: Mapping[str, str] | None = None,
) -> Logs:  # fmt: skip
    """A page of the request log. `filters`: the query filters offered (name -> value as asked, kept
    in the next page's URL); `keys`: key hash -> name, for a log that spans several keys (a Key
    column linking to each key's own log), None for one key's log."""
    asked = dict(filters or {})
    rows = tuple(
        (Link(iso(g.created_at), f"/console/logs/{g.id}", ""),
         *((Link(keys.get(g.key_hash, g.key_hash[:12]), "/console/logs?key=" + quote(g.key_hash, safe=""), ""),)
           if keys is not None else ()),
         g.model, g.provider, f.count(g.tokens_prompt + g.tokens_completion), f.usd(g.cost), _ms(g.latency_ms),
         _ms(g.ttft_ms), g.status, g.app_title or g.app or f.DASH)
        for g in gens
    )  # fmt: skip
    head = ("Time", *(("Key",) if keys is not None else ()), "Model", "Provider", "Tokens", "Cost", "Latency",
            "TTFT", "Status", "App")  # fmt: skip
    older = ""
    if len(gens) == page_size:
        older = "/console/logs?" + urlencode(
            {"before": repr(gens[-1].created_at), **{k: v for k, v in asked.items() if v}}
        )
    form = tuple((name, FILTER_LABELS[name], value) for name, value in asked.items())
    return Logs(site, "/console/logs", "Request log", csrf, is_admin, Table(head, rows), older, form)


def detail(site: Site, g: GenerationRecord, csrf: str, is_admin: bool) -> Detail:
    facts = Table(("Field", "Value"), (
        ("Time", iso(g.created_at)), ("Model", g.model), ("Provider", g.provider),
        ("Upstream model", g.upstream_model), ("API", g.api), ("Streamed", "yes" if g.streamed else "no"),
        ("Status", g.status), ("Finish reason", g.finish_reason or f.DASH),
        ("Prompt tokens", f.count(g.tokens_prompt)), ("Completion tokens", f.count(g.tokens_completion)),
        ("Cached tokens", f.count(g.tokens_cached)), ("Reasoning tokens", f.count(g.tokens_reasoning)),
        ("Cost", f.usd(g.cost)), ("Latency", _ms(g.latency_ms)), ("Time to first token", _ms(g.ttft_ms)),
        ("Throughput", f.throughput(g.throughput)), ("App", g.app_title or g.app or f.DASH),
        ("Error", g.error or f.DASH),
    ))  # fmt: skip
    attempts = Table(
        ("#", "Provider", "Model", "Status", "Error"),
        tuple((str(i), str(a.get("provider", "")), str(a.get("model", "")), str(a.get("status", "")),
               str(a.get("error", ""))[:300]) for i, a in enumerate(g.attempts, 1)),
    )  # fmt: skip
    return Detail(site, f"/console/logs/{g.id}", f"Generation {g.id}", csrf, is_admin, facts, attempts)
