"""Page data, built from fabricated catalogue and store rows: which rows, in which order, which figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

from keeprouter.config import Config, parse_config
from keeprouter.store.base import ActivityRow, AppRow, EndpointDay
from keeprouter.web.pages import guides, model, models, providers, rankings
from keeprouter.web.pages.common import Link, Site
from keeprouter.web.sources import Live

TODAY = dt.date(2026, 12, 2)
SITE = Site("KeepRouter", "https://router.example", TODAY)


def _ep(provider: str, upstream: str, inp: float, out: float, caps: list[str], **kw: Any) -> dict[str, Any]:
    pricing = {"input": inp, "output": out}
    return {"provider": provider, "model": upstream, "pricing": pricing, "capabilities": caps, **kw}


def config(**env: str) -> Config:
    raw = {
        "providers": {
            "fast": {"api": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"},
            "cheap": {"api": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": "k"},
        },
        "models": {
            "m-one": {
                "name": "Model One", "maker": "Acme", "context_length": 32000, "created": dt.date(2026, 1, 5),
                "endpoints": [_ep("fast", "one-fast", 3, 15, ["streaming", "tools"]),
                              _ep("cheap", "one-cheap", 0.15, 0.60, ["streaming"], context_length=16000)],
            },
            "m-two": {
                "name": "Model Two", "maker": "Acme", "context_length": 8000, "created": dt.date(2026, 6, 1),
                "endpoints": [_ep("fast", "two", 1, 2, [])],
            },
        },
    }  # fmt: skip
    return parse_config(raw, env=dict(env))


def act(date: str, model_id: str, provider: str, p: int, c: int, r: int = 0, n: int = 1) -> ActivityRow:
    return ActivityRow(date=date, model=model_id, provider=provider, requests=n, prompt_tokens=p,
                       completion_tokens=c, reasoning_tokens=r, usage=D("0.001"))  # fmt: skip


def day(date: str, provider: str, upstream: str, uptime: float | None, latency: float | None = 0.5) -> EndpointDay:
    return EndpointDay(date=date, model="m-one", provider=provider, upstream_model=upstream, requests=10,
                       successes=9, rate_limited=0, uptime=uptime, latency=latency, throughput=40.0)  # fmt: skip


def build_one(cfg: Config, **kw: Any) -> model.ModelPage:
    m = cfg.models["m-one"]
    live = kw.pop("live", {})
    return model.build(cfg, SITE, m, live, kw.get("activity", []), kw.get("days", []), kw.get("apps", []))


def test_model_intro_quotes_the_cheapest_routable_endpoint_and_the_exact_typical_cost() -> None:
    page = build_one(config())
    assert page.title == "Model One API — pricing & specs"
    assert "Input costs $0.15 per 1M tokens and output $0.60 per 1M tokens on cheap" in page.intro
    assert "billed at cost with no markup" in page.intro
    assert page.example_cost == "about $0.00045"  # 1000 x 0.15 + 500 x 0.60, per 1M
    specs = dict(page.specs.rows)
    assert specs["Input price"] == "$0.15 per 1M tokens" and specs["Context length"] == "32,000 tokens"
    assert specs["Capabilities"] == "Streaming, Tool / function calling"  # true to at least one endpoint
    assert specs["APIs"] == "OpenAI-compatible, Anthropic-compatible" and specs["Model id"] == "m-one"
    assert page.unavailable == ""


def test_provider_rows_in_config_order_with_live_figures_and_status() -> None:
    cfg = config()
    m = cfg.models["m-one"]
    lv = Live(circuit="open", uptime_1d=80.0, latency_p50=0.25, latency_p90=0.9, throughput_p50=55.5)
    page = build_one(cfg, live={id(m.endpoints[0]): lv})
    assert page.providers.rows == (
        ("fast", "$3.00", "$15.00", "32,000", "80.0%", "250 ms", "55.5 tok/s", "circuit open"),
        ("cheap", "$0.15", "$0.60", "16,000", "—", "—", "—", "live"),
    )
    assert page.performance.rows == (("fast", "250 ms", "900 ms", "55.5 tok/s"),)


def test_activity_per_day_sums_providers_and_orders_days() -> None:
    rows = [act("2026-12-01", "m-one", "fast", 100, 10, 3), act("2026-11-20", "m-one", "cheap", 5, 1),
            act("2026-12-01", "m-one", "cheap", 1, 1, n=2)]  # fmt: skip
    page = build_one(config(), activity=rows)
    assert page.activity_chart.table.rows == (
        ("2026-11-20", "5", "1", "0", "1"),
        ("2026-12-01", "101", "11", "3", "3"),
    )
    assert [m.date for m in page.activity_chart.series[0].marks] == ["2026-11-20", "2026-12-01"]


def test_uptime_per_provider_per_day_one_column_each() -> None:
    days = [day("2026-11-30", "fast", "one-fast", 100.0), day("2026-12-01", "fast", "one-fast", 92.5),
            day("2026-12-01", "cheap", "one-cheap", None)]  # fmt: skip
    page = build_one(config(), days=days)
    assert page.uptime_chart.table.head == ("Date", "fast")  # no uptime figure for cheap: no column
    assert page.uptime_chart.table.rows == (("2026-11-30", "100.0%"), ("2026-12-01", "92.5%"))
    assert page.latency_chart.table.head == ("Date", "cheap", "fast")


def test_apps_use_the_title_else_the_referer() -> None:
    apps = [AppRow(app="https://cline.bot", app_title="Cline", requests=2, tokens=300),
            AppRow(app="https://aider.chat", app_title=None, requests=1, tokens=7)]  # fmt: skip
    assert build_one(config(), apps=apps).apps.rows == (("Cline", "300", "2"), ("https://aider.chat", "7", "1"))
    assert build_one(config()).apps.rows == ()


def test_faq_is_true_to_the_model() -> None:
    cfg = config()
    one = {q.question: q.answer for q in build_one(cfg).faq}
    assert one["Does Model One support streaming?"].startswith("Yes")
    assert one["Does Model One support tool calling?"].startswith("Yes")
    assert "about $0.00045" in one["What does a typical Model One request cost?"]
    assert one["Who makes Model One?"] == "Model One is made by Acme."
    two = model.build(cfg, SITE, cfg.models["m-two"], {}, [], [], [])
    answers = {q.question: q.answer for q in two.faq}
    assert answers["Does Model Two support streaming?"].startswith("No")
    assert answers["Does Model Two support tool calling?"].startswith("No")


def test_related_models_are_the_same_makers_with_their_prices() -> None:
    page = build_one(config())
    (row,) = page.related.rows
    assert isinstance(row[0], Link) and row[0].href == "/models/m-two"
    assert row[0].md == "https://router.example/models/m-two.md"
    assert row[1:] == ("$1.00", "$2.00", "8,000")


def test_a_builtin_model_without_a_key_is_listed_with_the_variable_to_set() -> None:
    cfg = parse_config({}, env={})
    page = model.build(cfg, SITE, cfg.models["ministral-14b-latest"], {}, [], [], [])
    assert page.unavailable == "not available on this server: set MISTRAL_API_KEY or OPENROUTER_API_KEY"
    assert page.example_cost == "about $0.0003"
    assert page.providers.rows[0][0] == "Mistral AI"
    assert page.providers.rows[0][-1] == "no key configured (set MISTRAL_API_KEY)"
    listing = models.build(cfg, SITE, [], {})
    assert listing.available == 0 and listing.total == len(listing.rows) == len(cfg.models)
    row = next(r for r in listing.rows if r.id == "ministral-14b-latest")
    assert row.unavailable.startswith("not available on this server: set MISTRAL_API_KEY")


def test_models_list_filters_and_sorts() -> None:
    cfg = config()
    usage = [act("2026-12-01", "m-two", "fast", 500, 500)]
    ours = {"m-one", "m-two"}  # the built-in catalogue is listed too

    def ids(q: dict[str, str]) -> list[str]:
        return [r.id for r in models.build(cfg, SITE, usage, q).rows if r.id in ours]

    assert ids({}) == ["m-two", "m-one"]  # newest first
    assert ids({"sort": "price"}) == ["m-one", "m-two"]  # cheapest endpoint: 0.75 < 3
    assert ids({"sort": "context"}) == ["m-one", "m-two"]
    assert ids({"sort": "usage"}) == ["m-two", "m-one"]
    assert ids({"sort": "bogus"}) == ["m-two", "m-one"]
    assert ids({"q": "ONE"}) == ["m-one"]
    assert ids({"capability": "tools"}) == ["m-one"]
    assert ids({"maker": "Nobody"}) == []
    page = models.build(cfg, SITE, usage, {})
    assert "Acme" in page.makers and page.rows[0].usage == "1,000"


def test_providers_pages() -> None:
    cfg = config()
    listing = providers.providers_page(cfg, SITE)
    configured = [r for r in listing.providers.rows if r[-1] == "configured"]
    assert [r[1] for r in configured] == ["cheap", "fast"]
    assert any(r[1] == "mistral" and r[-1] == "not configured: set MISTRAL_API_KEY" for r in listing.providers.rows)
    page = providers.build_provider(cfg, SITE, "fast", {}, [day("2026-12-01", "fast", "one-fast", 99.0)])
    assert [r[1] for r in page.models.rows] == ["one-fast", "two"]
    assert page.uptime_chart.table.rows == (("2026-12-01", "99.0%"),)


def test_rankings_by_period() -> None:
    cfg = config()
    rows = [act("2026-12-02", "m-one", "fast", 10, 0), act("2026-11-28", "m-two", "fast", 50, 0),
            act("2026-11-10", "m-one", "fast", 100, 0)]  # fmt: skip
    page = rankings.build(cfg, SITE, rows, {"day": [AppRow(app="a.example", app_title="A", requests=1, tokens=5)]})
    by = {p.id: p for p in page.periods}
    assert [(r[1].title, r[3]) for r in by["day"].models.rows] == [("Model One", "10")]
    assert [(r[1].title, r[3]) for r in by["week"].models.rows] == [("Model Two", "50"), ("Model One", "10")]
    assert [(r[1].title, r[3]) for r in by["month"].models.rows] == [("Model One", "110"), ("Model Two", "50")]
    assert by["day"].apps.rows == (("1", "A", "a.example", "5", "1"),) and by["week"].apps.rows == ()


def test_guides_use_this_servers_base_url_and_a_callable_model() -> None:
    cfg = config()
    qs = guides.quickstart(cfg, SITE)
    code = "\n".join(s.code for sec in qs.sections for s in sec.samples)
    assert "https://router.example/v1" in code and 'model="m-one"' in code  # cheapest callable model
    assert "api-key" in [s.anchor for s in qs.sections]
    home = guides.home(parse_config({}, env={}), SITE)
    assert any("MISTRAL_API_KEY" in p for p in home.intro)  # says what would make a model callable


def test_llms_txt_indexes_every_markdown_page() -> None:
    cfg = config()
    text = guides.llms_txt(cfg, SITE)
    assert text.startswith("# KeepRouter\n\n> ")
    for path in ("/index.md", "/models.md", "/providers.md", "/rankings.md", "/docs/quickstart.md",
                 "/use-cases/claude-code.md", "/models/m-one.md", "/providers/fast.md"):  # fmt: skip
        assert f"(https://router.example{path})" in text


def test_a_local_hosts_zero_price_is_not_quoted_for_a_model_not_served_here() -> None:
    cfg = parse_config({}, env={})
    # a model a local host serves beside hosted ones (one only a local host serves is quoted at its $0)
    m = next(
        m
        for m in cfg.models.values()
        if any(e.pricing.source == "local" for e in m.unconfigured)
        and any(e.pricing.source != "local" for e in m.unconfigured)
    )
    page = model.build(cfg, SITE, m, {}, [], [], [])
    assert "Input costs $0 " not in page.intro and page.example_cost != "$0"
    local = parse_config({}, env={"OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1"})
    served = local.models[m.id]
    if any(e.provider == "ollama" for e in served.endpoints):  # then the $0 is true here
        assert model.build(local, SITE, served, {}, [], [], []).example_cost == "$0"


def test_the_model_page_says_what_the_prompt_cache_did_this_month() -> None:
    from keeprouter.store.base import CacheUsageRow

    cfg = config()
    m = cfg.models["m-one"]
    quiet = model.build(cfg, SITE, m, {}, [], [], [])
    assert quiet.cache_note == "No request since 2026-12-01 (this month, UTC)."
    rows = [CacheUsageRow(model="m-one", key_hash=k, requests=2, prompt_tokens=5_000, cached_tokens=c,
                          cache_discount=D("0.01")) for k, c in (("a", 4_000), ("b", 1_000))]  # fmt: skip
    page = model.build(cfg, SITE, m, {}, [], [], [], rows)
    assert (page.cache.share, page.cache.saved, page.cache.requests) == ("50.0%", "$0.02", "4")
    assert page.cache_note == (
        "Since 2026-12-01 (this month, UTC), 50.0% of prompt tokens were read from the providers' prompt "
        "caches (5,000 of 10,000 over 4 requests), which saved $0.02."
    )
