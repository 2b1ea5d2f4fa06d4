"""`/providers` and `/providers/{id}`: every upstream the catalogue knows, configured here or not."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from keeprouter.config import Config, ProviderInfo
from keeprouter.store.base import EndpointDay
from keeprouter.web import format as f
from keeprouter.web.charts import Chart, Table, lines
from keeprouter.web.pages.common import Link, Site, link, listed_endpoints
from keeprouter.web.sources import Live, PageSources

WIRE = {
    "openai": "OpenAI-compatible",
    "anthropic": "Anthropic Messages",
    "azure": "Azure OpenAI",
    "bedrock": "AWS Bedrock Converse",
}


@dataclass(frozen=True, slots=True)
class ProvidersPage:
    site: Site
    path: str
    title: str
    providers: Table
    configured: int
    total: int


@dataclass(frozen=True, slots=True)
class ProviderPage:
    site: Site
    path: str
    title: str
    id: str
    name: str
    status: str
    facts: Table
    models: Table
    uptime_chart: Chart


def _status(info: ProviderInfo) -> str:
    if info.configured:
        return "configured"
    return f"not configured: set {info.enable_env}" if info.enable_env else "not configured"


def _counts(config: Config) -> dict[str, int]:
    n: dict[str, int] = defaultdict(int)
    for m in config.models.values():
        for p in {e.provider for e in (*m.endpoints, *m.unconfigured)}:
            n[p] += 1
    return n


def providers_page(config: Config, site: Site) -> ProvidersPage:
    counts = _counts(config)
    infos = sorted(config.provider_info.values(), key=lambda i: (not i.configured, i.name.lower()))
    rows = tuple(
        (
            link(site, i.name, f"/providers/{i.id}"),
            i.id,
            WIRE.get(i.api, i.api),
            f.count(counts.get(i.id, 0)),
            _status(i),
        )
        for i in infos
    )
    return ProvidersPage(
        site=site,
        path="/providers",
        title="Providers",
        providers=Table(("Provider", "Id", "Wire format", "Models", "Status"), rows),
        configured=sum(1 for i in infos if i.configured),
        total=len(infos),
    )


async def provider_page(config: Config, sources: PageSources, site: Site, provider_id: str) -> ProviderPage | None:
    if provider_id not in config.provider_info:
        return None
    days = [d for d in await sources.endpoint_days() if d.provider == provider_id]
    live: dict[tuple[str, str], Live] = {}
    for m in config.models.values():
        for ep in m.endpoints:
            if ep.provider == provider_id:
                live[(m.id, ep.model)] = sources.live(m.id, ep)
    return build_provider(config, site, provider_id, live, days)


def build_provider(
    config: Config,
    site: Site,
    provider_id: str,
    live: dict[tuple[str, str], Live],
    days: Sequence[EndpointDay],
) -> ProviderPage:
    """`live` maps (model id, upstream model) -> live health; `days` are this provider's rows."""
    info = config.provider_info[provider_id]
    rows: list[tuple[str | Link, ...]] = []
    for m in config.models.values():
        for x in listed_endpoints(config, m):
            if x.provider.id != provider_id:
                continue
            lv = live.get((m.id, x.endpoint.model))
            ep = x.endpoint
            rows.append(
                (
                    link(site, m.name, f"/models/{m.id}"),
                    ep.model,
                    f.price(ep.pricing.input),
                    f.price(ep.pricing.output),
                    f.count(ep.context_length),
                    f.percent(lv.uptime_1d if lv else None),
                    f.ms(lv.latency_p50 if lv else None),
                    f.throughput(lv.throughput_p50 if lv else None),
                )
            )
    facts = Table(
        ("Fact", "Value"),
        (
            ("Id", info.id),
            ("Wire format", WIRE.get(info.api, info.api)),
            ("Base URL", info.base_url),
            ("Status", _status(info)),
            *((("API docs", info.docs),) if info.docs else ()),
        ),
    )
    # Uptime per model served, per day: one line per model.
    series: dict[str, dict[dt.date, float | None]] = defaultdict(dict)
    names = {m.id: m.name for m in config.models.values()}
    for d in days:
        if d.uptime is not None:
            series[names.get(d.model, d.model)][dt.date.fromisoformat(d.date)] = d.uptime
    cols = sorted(series)
    dates = sorted({day for s in series.values() for day in s})
    table = Table(
        ("Date", *cols), tuple((day.isoformat(), *(f.percent(series[c].get(day)) for c in cols)) for day in dates)
    )
    chart = lines(
        "uptime-chart",
        f"Uptime of {info.name} per model per day",
        [(c, series[c]) for c in cols],
        f.percent,
        table,
        y_max=100.0,
    )
    return ProviderPage(
        site=site,
        path=f"/providers/{info.id}",
        title=f"{info.name} — models, prices and uptime",
        id=info.id,
        name=info.name,
        status=_status(info),
        facts=facts,
        models=Table(
            (
                "Model",
                "Upstream model",
                "Input",
                "Output",
                "Context",
                "Uptime (1 day)",
                "Latency p50",
                "Throughput p50",
            ),
            tuple(rows),
        ),
        uptime_chart=chart,
    )
