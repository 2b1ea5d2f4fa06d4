"""`/rankings`: models and apps by tokens over the last day, week and month (UTC days, today included)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keeprouter.config import Config
from keeprouter.store.base import ActivityRow, AppRow
from keeprouter.web import format as f
from keeprouter.web.charts import Table
from keeprouter.web.pages.common import Link, Site, link
from keeprouter.web.sources import PageSources

PERIODS = (("day", "Today", 1), ("week", "This week (7 days)", 7), ("month", "This month (30 days)", 30))
TOP = 20


@dataclass(frozen=True, slots=True)
class Ranking:
    id: str  # day | week | month
    title: str
    models: Table
    apps: Table


@dataclass(frozen=True, slots=True)
class RankingsPage:
    site: Site
    path: str
    title: str
    periods: tuple[Ranking, ...]


async def rankings_page(config: Config, sources: PageSources, site: Site) -> RankingsPage:
    activity = await sources.activity(30)
    apps = {pid: await sources.apps(days, limit=TOP) for pid, _, days in PERIODS}
    return build(config, site, activity, apps)


def build(
    config: Config, site: Site, activity: Sequence[ActivityRow], apps: Mapping[str, Sequence[AppRow]]
) -> RankingsPage:
    """`activity`: every key's rows over the last 30 days; `apps`: the app rankings per period id."""
    periods = []
    for pid, title, days in PERIODS:
        since = (site.today - dt.timedelta(days=days - 1)).isoformat()
        totals: dict[str, list[int]] = {}
        for r in activity:
            if r.date >= since:
                acc = totals.setdefault(r.model, [0, 0])
                acc[0] += r.prompt_tokens + r.completion_tokens
                acc[1] += r.requests
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP]
        rows: list[tuple[str | Link, ...]] = []
        for i, (model_id, (tok, req)) in enumerate(ranked, 1):
            m = config.models.get(model_id)
            name: str | Link = link(site, m.name, f"/models/{m.id}") if m else model_id
            rows.append((str(i), name, m.maker if m else f.DASH, f.count(tok), f.count(req)))
        app_rows = tuple(
            (str(i), a.app_title or a.app, a.app, f.count(a.tokens), f.count(a.requests))
            for i, a in enumerate(apps.get(pid, ()), 1)
        )
        periods.append(
            Ranking(
                pid,
                title,
                Table(("Rank", "Model", "Maker", "Tokens", "Requests"), tuple(rows)),
                Table(("Rank", "App", "Site", "Tokens", "Requests"), app_rows),
            )
        )
    return RankingsPage(site, "/rankings", "Rankings", tuple(periods))
