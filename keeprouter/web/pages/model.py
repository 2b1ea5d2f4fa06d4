"""`/models/{id}`: one model's page, in the order of the published KeepRouter page.

`model_page()` gathers the inputs (the only await); `build()` is pure and is what the tests drive.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keeprouter.billing.headline import headline
from keeprouter.config import Config, ModelConfig, Pricing
from keeprouter.store.base import ActivityRow, AppRow, CacheUsageRow, EndpointDay
from keeprouter.web import format as f
from keeprouter.web.charts import Chart, Table, compact, lines, stacked_bars
from keeprouter.web.pages.cache_share import CacheSummary, month_start, summary
from keeprouter.web.pages.common import (
    CLIENT_APIS,
    Link,
    Listed,
    Site,
    capabilities,
    link,
    listed_endpoints,
    modality,
    prices_as_of,
    unavailable_note,
)
from keeprouter.web.pages.model_retrieval import RERANK, Faq, is_retrieval, per_search, words
from keeprouter.web.pages.samples import Sample, samples_for
from keeprouter.web.sources import Live, PageSources

APPS_DAYS = 30
ROUTING_NOTE = (
    "{site} sends each request to the best provider able to serve it: one whose context fits the "
    "prompt and that supports the features the request uses, preferring healthy, cheap and fast "
    "endpoints. When a provider fails before answering, the request falls back to the next one, "
    "and you pay only for the provider that answered."
)


@dataclass(frozen=True, slots=True)
class ModelPage:
    site: Site
    path: str
    id: str
    name: str
    maker: str
    description: str
    title: str
    intro: str
    example_cost: str
    unavailable: str
    specs: Table
    samples: tuple[Sample, ...]
    providers: Table
    routing_note: str
    performance: Table
    latency_chart: Chart  # each chart carries its own data table
    throughput_chart: Chart
    activity_chart: Chart
    cache: CacheSummary  # this month's prompt-cache figures, every key together
    cache_note: str  # the same, as one sentence
    uptime_chart: Chart
    apps: Table
    apps_days: int
    faq: tuple[Faq, ...]
    guides: tuple[Link, ...]
    related: Table
    nav: tuple[Link, ...]  # all models, quickstart, get an API key
    prices_as_of: str


async def model_page(config: Config, sources: PageSources, site: Site, model_id: str) -> ModelPage | None:
    model = config.models.get(model_id)
    if model is None:
        return None
    listed = listed_endpoints(config, model)
    live = {id(x.endpoint): sources.live(model.id, x.endpoint) for x in listed if x.configured}
    activity = [r for r in await sources.activity() if r.model == model.id]
    days = [d for d in await sources.endpoint_days() if d.model == model.id]
    apps = await sources.apps(APPS_DAYS, model=model.id)
    cache = await sources.cache_usage(model=model.id)
    return build(config, site, model, live, activity, days, apps, cache)


def _status(x: Listed, live: Live | None) -> str:
    if not x.configured:
        env = x.provider.enable_env
        return f"no key configured (set {env})" if env else "not configured"
    if live is None or live.circuit == "closed":
        return "live"
    return "circuit open" if live.circuit == "open" else "recovering (probing)"


def _label(x: Listed, listed: Sequence[Listed]) -> str:
    """A provider's name, with the upstream model when one provider serves the model twice."""
    twice = sum(1 for o in listed if o.provider.id == x.provider.id) > 1
    return f"{x.provider.name} ({x.endpoint.model})" if twice else x.provider.name


def build(
    config: Config,
    site: Site,
    model: ModelConfig,
    live: dict[int, Live],
    activity: Sequence[ActivityRow],
    days: Sequence[EndpointDay],
    apps: Sequence[AppRow],
    cache: Sequence[CacheUsageRow] = (),
) -> ModelPage:
    """The page from its inputs: `live` maps id(endpoint) -> live health for routable endpoints;
    `activity`, `days`, `apps` and `cache` (this month's) are this model's rows from the store."""
    listed = listed_endpoints(config, model)
    top = headline(model)
    caps = capabilities(model)
    if top is None:  # a model defined without endpoints: cannot come from a valid config
        raise ValueError(f"model {model.id} has no endpoint")
    p = top.pricing
    several = len({x.provider.id for x in listed}) > 1
    where = f" on {config.provider_info[top.provider].name}, the cheapest of {len(listed)} providers" if several else ""
    if is_retrieval(model):  # embeddings or rerank: no output, no reply, its own endpoint
        said = words(model, site, p, where, unavailable_note(config, model))
        intro, cost, specs, faq = said.intro, said.example_cost, said.specs, said.faq
    else:
        intro, cost, specs, faq = _chat_words(config, site, model, caps, p, where)
    rows = tuple(_provider_row(x, live.get(id(x.endpoint)), listed, model.modality) for x in listed)
    providers = Table(_provider_headers(model.modality), rows)
    performance = Table(
        ("Provider", "Latency p50", "Latency p90", "Throughput p50"),
        tuple(
            (_label(x, listed), f.ms(lv.latency_p50), f.ms(lv.latency_p90), f.throughput(lv.throughput_p50))
            for x in listed
            if x.configured and (lv := live.get(id(x.endpoint))) is not None
        ),
    )
    names = {(x.provider.id, x.endpoint.model): _label(x, listed) for x in listed}
    uptime = _per_provider_day(days, names, "uptime", "Uptime per provider per day", f.percent, y_max=100.0)
    latency = _per_provider_day(days, names, "latency", "Latency (time to first token) per provider per day", f.ms)
    tput_ticks: Callable[[float], str] = lambda v: f"{compact(v)} tok/s"  # noqa: E731  ("2,500.0 tok/s" is too wide)
    tput_title = "Throughput per provider per day"
    tput = _per_provider_day(days, names, "throughput", tput_title, f.throughput, tick_fmt=tput_ticks)
    cached = summary(cache, month_start(site.today))
    apps_t = Table(
        ("App", "Tokens", "Requests"),
        tuple((a.app_title or a.app, f.count(a.tokens), f.count(a.requests)) for a in apps),
    )
    return ModelPage(
        site=site,
        path=f"/models/{model.id}",
        id=model.id,
        name=model.name,
        maker=model.maker,
        description=model.description,
        title=f"{model.name} API — pricing & specs",
        intro=intro,
        example_cost=cost,
        unavailable=unavailable_note(config, model),
        specs=specs,
        samples=samples_for(site.base_url, model.id, model.modality),
        providers=providers,
        routing_note=ROUTING_NOTE.format(site=site.name),
        performance=performance,
        latency_chart=latency,
        throughput_chart=tput,
        activity_chart=_activity(activity),
        cache=cached,
        cache_note="" if is_retrieval(model) else _cache_note(cached),  # prompt caches are chat's
        uptime_chart=uptime,
        apps=apps_t,
        apps_days=APPS_DAYS,
        faq=faq,
        guides=_guides(site, model.modality),
        related=_related(config, site, model),
        nav=(
            link(site, "All models", "/models"),
            link(site, "Quickstart", "/docs/quickstart"),
            Link("Get an API key", "/console/me", site.base_url + "/console/me"),  # the console: no Markdown twin
        ),
        prices_as_of=prices_as_of([model], site.today),
    )


def _cache_note(c: CacheSummary) -> str:
    if c.requests == "0":
        return f"No request since {c.since} (this month, UTC)."
    return (
        f"Since {c.since} (this month, UTC), {c.share} of prompt tokens were read from the providers' prompt "
        f"caches ({c.cached_tokens} of {c.prompt_tokens} over {c.requests} requests), which saved {c.saved}."
    )


def _chat_words(
    config: Config, site: Site, model: ModelConfig, caps: list[str], p: Pricing, where: str
) -> tuple[str, str, Table, tuple[Faq, ...]]:
    """A chat model's intro, example cost, specs and FAQ."""
    cost = f.about_usd(f.example_cost(p))
    price_words = f"Input costs {f.per_million(p.input)} and output {f.per_million(p.output)}{where}"
    maker = model.maker or "an unnamed maker"
    intro = (
        f"{model.name} is a model by {maker}, served through {site.name}. {price_words}, billed at cost "
        f"with no markup: a request with a {f.EXAMPLE_PROMPT:,}-token prompt and a {f.EXAMPLE_REPLY:,}-token "
        f"reply costs {cost}."
    )
    specs = Table(
        ("Spec", "Value"),
        (
            ("Maker", model.maker or f.DASH),
            ("Modality", modality(model)),
            ("Context length", f.tokens(model.context_length)),
            ("Input price", f.per_million(p.input)),
            ("Output price", f.per_million(p.output)),
            ("Capabilities", ", ".join(caps) or f.DASH),
            ("APIs", ", ".join(CLIENT_APIS)),
            ("Model id", model.id),
        ),
    )
    return intro, cost, specs, _faq(config, site, model, caps, price_words, cost)


def _guides(site: Site, kind: str) -> tuple[Link, ...]:
    if kind == "text->text":
        return (
            link(site, "Quickstart", "/docs/quickstart"),
            link(site, "Use it with the OpenAI SDK", "/use-cases/openai-sdk"),
            link(site, "Use it with the Anthropic SDK", "/use-cases/anthropic-sdk"),
            link(site, "Use it with Claude Code", "/use-cases/claude-code"),
        )
    return (link(site, "Quickstart", "/docs/quickstart"),)  # the chat guides would not apply


def _provider_headers(kind: str) -> tuple[str, ...]:
    if kind == "text->text":
        return ("Provider", "Input", "Output", "Context", "Uptime (1 day)", "Latency p50", "Throughput p50", "Status")
    search = ("Per search",) if kind == RERANK else ()
    return ("Provider", "Input", *search, "Context", "Uptime (1 day)", "Latency p50", "Status")


def _provider_row(x: Listed, lv: Live | None, listed: Sequence[Listed], kind: str) -> tuple[str, ...]:
    """One provider's row under `_provider_headers(kind)`: a retrieval model has no output price
    and no output throughput, a reranker a price per search."""
    ep = x.endpoint
    uptime, p50 = f.percent(lv.uptime_1d if lv else None), f.ms(lv.latency_p50 if lv else None)
    if kind == "text->text":
        tput = f.throughput(lv.throughput_p50 if lv else None)
        return (_label(x, listed), f.price(ep.pricing.input), f.price(ep.pricing.output), f.count(ep.context_length),
                uptime, p50, tput, _status(x, lv))  # fmt: skip
    search = (per_search(ep.pricing.request),) if kind == RERANK else ()
    return (_label(x, listed), f.price(ep.pricing.input), *search, f.count(ep.context_length), uptime, p50,
            _status(x, lv))  # fmt: skip


def _per_provider_day(
    days: Sequence[EndpointDay],
    names: dict[tuple[str, str], str],
    metric: str,
    title: str,
    fmt: Callable[[float | None], str],
    *,
    y_max: float | None = None,
    tick_fmt: Callable[[float], str] | None = None,
) -> Chart:
    """A line chart of one metric per provider per day, with its table (Date + a column per provider)."""
    series: dict[str, dict[dt.date, float | None]] = defaultdict(dict)
    for d in days:
        value = getattr(d, metric)
        if value is not None:
            name = names.get((d.provider, d.upstream_model), d.provider)
            series[name][dt.date.fromisoformat(d.date)] = value
    cols = sorted(series)
    dates = sorted({day for s in series.values() for day in s})
    table = Table(
        ("Date", *cols),
        tuple((day.isoformat(), *(fmt(series[c].get(day)) for c in cols)) for day in dates),
    )
    return lines(f"{metric}-chart", title, [(c, series[c]) for c in cols], fmt, table, y_max=y_max, tick_fmt=tick_fmt)


def _activity(rows: Sequence[ActivityRow]) -> Chart:
    per_day: dict[dt.date, list[int]] = {}
    for r in rows:
        acc = per_day.setdefault(dt.date.fromisoformat(r.date), [0, 0, 0, 0])
        acc[0] += r.prompt_tokens
        acc[1] += r.completion_tokens
        acc[2] += r.reasoning_tokens
        acc[3] += r.requests
    dates = sorted(per_day)
    table = Table(
        ("Date", "Prompt tokens", "Completion tokens", "Reasoning tokens", "Requests"),
        tuple((d.isoformat(), *(f.count(v) for v in per_day[d])) for d in dates),
    )
    return stacked_bars(
        "activity-chart",
        "Tokens per day",
        [("Prompt", {d: per_day[d][0] for d in dates}), ("Completion", {d: per_day[d][1] for d in dates})],
        lambda v: f.tokens(round(v)),
        table,
        tick_fmt=compact,  # "10,000 tokens" would not fit beside the axis
    )


def _faq(
    config: Config, site: Site, model: ModelConfig, caps: list[str], price_words: str, cost: str
) -> tuple[Faq, ...]:
    name = model.name
    how = (
        f'Send "model": "{model.id}" with your {site.name} key to {site.base_url}/v1/chat/completions '
        f"(OpenAI SDKs and OpenAI-compatible tools) or to {site.base_url}/v1/messages (Anthropic SDKs and "
        "Claude Code); the code samples above run as printed."
    )
    note = unavailable_note(config, model)
    if note:
        how += f" Here, {name} is {note}."
    streams = "Streaming" in caps
    tools = "Tool / function calling" in caps
    return (
        Faq(f"How much does {name} cost?", f"{price_words}, billed at cost with no markup."),
        Faq(
            f"What does a typical {name} request cost?",
            f"A request with a {f.EXAMPLE_PROMPT:,}-token prompt and a {f.EXAMPLE_REPLY:,}-token reply costs {cost}.",
        ),
        Faq(f"Who makes {name}?", f"{name} is made by {model.maker}." if model.maker else "Its maker is not listed."),
        Faq(f"How do I call {name}?", how),
        Faq(
            f"Does {name} support streaming?",
            "Yes: set \"stream\": true on either API and tokens arrive as server-sent events."
            if streams else "No: its providers answer whole responses only.",
        ),
        Faq(
            f"Does {name} support tool calling?",
            "Yes: tools and tool_choice work on both APIs, streamed or not, and are translated exactly."
            if tools else "No: none of its providers accept tools.",
        ),
        Faq(f"What is the context length of {name}?", f"{f.tokens(model.context_length)}."),
    )  # fmt: skip


def _related(config: Config, site: Site, model: ModelConfig) -> Table:
    rows: list[tuple[str | Link, ...]] = []
    for other in config.models.values():
        if other.id == model.id or not model.maker or other.maker != model.maker:
            continue
        ep = headline(other)
        if ep is None:
            continue
        output = f.price(ep.pricing.output) if other.modality == "text->text" else f.DASH  # none billed
        rows.append((link(site, other.name, f"/models/{other.id}"), f.price(ep.pricing.input), output,
                     f.count(other.context_length)))  # fmt: skip
    return Table(("Model", "Input", "Output", "Context"), tuple(rows))
