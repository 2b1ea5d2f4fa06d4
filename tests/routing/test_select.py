"""Endpoint selection: every filter, every ordering rule, ProviderPrefs parsing, and the model list
(`models`, `:nitro`/`:floor`) as Gateway.route builds it. Pure: no network, seeded randomness."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal
from typing import Any, cast

import pytest

from keeprouter.billing.ledger import Ledger
from keeprouter.config import EndpointConfig, ModelConfig, Pricing, Timeouts, parse_config
from keeprouter.errors import ContextLengthExceeded, InvalidRequest, NotFound
from keeprouter.formats.canonical import ChatRequest, Message, Reasoning, TextPart, Tool
from keeprouter.gateway import Gateway
from keeprouter.routing.fit import MIN_OUTPUT
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.select import Candidate, ProviderPrefs, endpoint_key, parse_prefs, plan

ALL_CAPS = ("streaming", "tools", "response_format", "reasoning")


def ep(
    provider: str,
    price: float = 1.0,
    *,
    out: float | None = None,
    caps: tuple[str, ...] = ALL_CAPS,
    ctx: int = 10_000,
) -> EndpointConfig:
    return EndpointConfig(
        provider=provider,
        model=f"up-{provider}",
        pricing=Pricing(Decimal(str(price)), Decimal(str(price if out is None else out))),
        capabilities=frozenset(caps),
        context_length=ctx,
        max_output_tokens=None,
        timeout=Timeouts(),
    )


def model(*eps: EndpointConfig, mid: str = "m") -> ModelConfig:
    return ModelConfig(mid, mid, "Test", 10_000, tuple(eps))


def req(**kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="hi")])], **kw)


class FakeStats:
    """Stats with fixed answers per provider name (keys are model|provider|upstream)."""

    def __init__(
        self,
        *,
        open: set[str] = frozenset(),  # type: ignore[assignment]
        failed: set[str] = frozenset(),  # type: ignore[assignment]
        throughput: dict[str, float] | None = None,
        latency: dict[str, float] | None = None,
    ) -> None:
        self.open, self.failed = set(open), set(failed)
        self.tp = throughput or {}
        self.lat = latency or {}

    @staticmethod
    def _p(key: str) -> str:
        return key.split("|")[1]

    def is_open(self, key: str) -> bool:
        return self._p(key) in self.open

    def recently_failed(self, key: str) -> bool:
        return self._p(key) in self.failed

    def throughput(self, key: str) -> float | None:
        return self.tp.get(self._p(key))

    def latency(self, key: str) -> float | None:
        return self.lat.get(self._p(key))


def names(cands: list[Candidate]) -> list[str]:
    return [c.endpoint.provider for c in cands]


def run(
    m: ModelConfig | list[ModelConfig],
    r: ChatRequest | None = None,
    prefs: dict[str, Any] | None = None,
    prompt: int = 10,
    stats: FakeStats | None = None,
    seed: int = 0,
) -> list[str]:
    models = m if isinstance(m, list) else [m]
    return names(plan(models, r or req(), parse_prefs(prefs), prompt, stats or FakeStats(), random.Random(seed)))


# ---- filters ---------------------------------------------------------------------------------


def test_context_length_prefers_endpoints_where_the_whole_output_budget_fits() -> None:
    m = model(ep("small", ctx=1000), ep("big", ctx=5000))
    assert sorted(run(m, prompt=700)) == ["big", "small"]
    # 700 estimated (up to 875 real) + 200 does not fit 1000: small can serve only with a lower budget
    for seed in range(5):
        assert run(m, req(max_tokens=200), prompt=700, seed=seed) == ["big", "small"]
    assert sorted(run(m, req(max_tokens=100), prompt=700)) == ["big", "small"]  # 875 + 100 fits


def test_a_prompt_that_fits_no_endpoint_is_a_400_naming_both_sizes_never_a_404() -> None:
    m = model(ep("small", ctx=1000), ep("big", ctx=5000))
    assert run(m, req(max_tokens=10_000), prompt=4000) == ["big"]  # served with a lower budget
    with pytest.raises(ContextLengthExceeded, match=r"prompt is too long: 4900 tokens > 4744 maximum") as e:
        run(m, req(max_tokens=10), prompt=4900)
    assert e.value.status == 400 and (e.value.tokens, e.value.limit) == (4900, 5000 - MIN_OUTPUT)


def test_context_length_zero_means_unknown_not_zero() -> None:
    assert run(model(ep("x", ctx=0)), req(max_tokens=50_000), prompt=50_000) == ["x"]


def test_tools_need_the_tools_capability() -> None:
    m = model(ep("plain", caps=("streaming",)), ep("tooled"))
    tools = [Tool(name="f", parameters={"type": "object"})]
    assert run(m, req(tools=tools)) == ["tooled"]
    with pytest.raises(NotFound, match="tool use"):
        run(model(ep("plain", caps=("streaming",))), req(tools=tools))


def test_streaming_needs_the_streaming_capability() -> None:
    m = model(ep("batch", caps=()), ep("live"))
    assert run(m, req(stream=True)) == ["live"]
    assert sorted(run(m, req(stream=False))) == ["batch", "live"]


@pytest.mark.parametrize(
    ("field", "value", "cap"),
    [
        ("response_format", {"type": "json_object"}, "response_format"),
        ("reasoning", Reasoning(effort="high"), "reasoning"),
    ],
)
def test_require_parameters(field: str, value: Any, cap: str) -> None:
    lacking = tuple(c for c in ALL_CAPS if c != cap)
    m = model(ep("lacks", caps=lacking), ep("has"))
    r = req(**{field: value})
    # without require_parameters the unsupported parameter is simply dropped: both serve
    assert sorted(run(m, r)) == ["has", "lacks"]
    assert run(m, r, {"require_parameters": True}) == ["has"]
    # a request that does not use the parameter is not restricted
    assert sorted(run(m, req(), {"require_parameters": True})) == ["has", "lacks"]
    # refused for the caller's own demand: a 400 naming what no endpoint supports
    with pytest.raises(InvalidRequest, match=f"supports {cap} \\(provider.require_parameters"):
        run(model(ep("lacks", caps=lacking)), r, {"require_parameters": True})


def test_only_and_ignore() -> None:
    m = model(ep("a"), ep("b"), ep("c"))
    assert sorted(run(m, prefs={"only": ["a", "c"]})) == ["a", "c"]
    assert sorted(run(m, prefs={"ignore": ["b"]})) == ["a", "c"]
    assert run(m, prefs={"only": ["a", "b"], "ignore": ["a"]}) == ["b"]
    with pytest.raises(NotFound, match=r"provider\.only"):
        run(m, prefs={"only": ["zzz"]})
    with pytest.raises(NotFound, match=r"provider\.ignore"):
        run(m, prefs={"ignore": ["a", "b", "c"]})


def test_empty_only_excludes_everything() -> None:
    with pytest.raises(NotFound):
        run(model(ep("a")), prefs={"only": []})


def test_order_with_fallbacks_puts_named_first_then_the_rest() -> None:
    m = model(ep("a", 1), ep("b", 1), ep("c", 1), ep("d", 1))
    for seed in range(20):
        got = run(m, prefs={"order": ["c", "a"]}, seed=seed)
        assert got[:2] == ["c", "a"]
        assert sorted(got[2:]) == ["b", "d"]


def test_order_unknown_names_are_ignored() -> None:
    m = model(ep("a"), ep("b"))
    got = run(m, prefs={"order": ["nope", "b"]})
    assert got[0] == "b"
    assert sorted(got) == ["a", "b"]


def test_order_without_fallbacks_uses_only_the_first_listed() -> None:
    m = model(ep("a"), ep("b"), ep("c"))
    assert run(m, prefs={"order": ["c", "a"], "allow_fallbacks": False}) == ["c"]
    # none of the ordered providers can serve: nothing else is tried
    with pytest.raises(NotFound, match="allow_fallbacks"):
        run(m, prefs={"order": ["zzz"], "allow_fallbacks": False})


def test_no_fallbacks_without_order_keeps_one_endpoint() -> None:
    m = model(ep("a"), ep("b"))
    assert len(run(m, prefs={"allow_fallbacks": False})) == 1
    # and only one across a `models` list too
    assert len(run([m, model(ep("c"), mid="m2")], prefs={"allow_fallbacks": False})) == 1


def test_max_price_prompt_and_completion() -> None:
    m = model(ep("cheap", 1, out=2), ep("mid", 3, out=3), ep("dear", 5, out=20))
    assert sorted(run(m, prefs={"max_price": {"prompt": 3}})) == ["cheap", "mid"]
    assert sorted(run(m, prefs={"max_price": {"completion": 2.5}})) == ["cheap"]
    assert run(m, prefs={"max_price": {"prompt": "4", "completion": 2}}) == ["cheap"]
    assert sorted(run(m, prefs={"max_price": {}})) == ["cheap", "dear", "mid"]
    with pytest.raises(NotFound, match="max_price"):
        run(m, prefs={"max_price": {"prompt": 0.5}})


def test_circuit_open_endpoints_are_skipped() -> None:
    m = model(ep("a"), ep("b"), ep("c"))
    for seed in range(10):
        assert sorted(run(m, stats=FakeStats(open={"a", "c"}), seed=seed)) == ["b"]


def test_all_circuits_open_still_tries_them() -> None:
    m = model(ep("a"), ep("b"))
    assert sorted(run(m, stats=FakeStats(open={"a", "b"}))) == ["a", "b"]


def test_open_circuits_are_per_model_in_a_models_list() -> None:
    m1 = model(ep("a"), mid="m1")
    m2 = model(ep("b"), ep("c"), mid="m2")
    # m1's only endpoint is open: still tried (all open for that model); m2's open one is skipped
    assert run([m1, m2], stats=FakeStats(open={"a", "b"})) == ["a", "c"]


def test_no_endpoints_at_all() -> None:
    with pytest.raises(NotFound, match="no endpoint is configured"):
        run(model())


# ---- ordering --------------------------------------------------------------------------------


def test_sort_price_is_cheapest_first_by_prompt_plus_completion() -> None:
    m = model(ep("dear", 5, out=5), ep("cheap", 1, out=1), ep("mid", 0.5, out=4))
    assert run(m, prefs={"sort": "price"}) == ["cheap", "mid", "dear"]
    assert run(m, prefs={"sort": {"by": "price"}}) == ["cheap", "mid", "dear"]


def test_sort_throughput_is_fastest_first_unknown_last() -> None:
    m = model(ep("slow"), ep("unknown"), ep("fast"))
    stats = FakeStats(throughput={"slow": 10.0, "fast": 200.0})
    assert run(m, prefs={"sort": "throughput"}, stats=stats) == ["fast", "slow", "unknown"]


def test_sort_latency_is_quickest_first_unknown_last() -> None:
    m = model(ep("unknown"), ep("laggy"), ep("snappy"))
    stats = FakeStats(latency={"laggy": 2.0, "snappy": 0.1})
    assert run(m, prefs={"sort": "latency"}, stats=stats) == ["snappy", "laggy", "unknown"]


def test_order_comes_before_sort() -> None:
    m = model(ep("dear", 9), ep("cheap", 1), ep("mid", 3))
    assert run(m, prefs={"order": ["dear"], "sort": "price"}) == ["dear", "cheap", "mid"]


def test_default_balances_load_by_inverse_square_price() -> None:
    # prices (input+output) 2, 4, 8: weights 1/4, 1/16, 1/64 -> first pick shares 16/21, 4/21, 1/21
    m = model(ep("p1", 1), ep("p2", 2), ep("p4", 4))
    rng = random.Random(1234)
    n = 4000
    firsts = Counter(names(plan([m], req(), ProviderPrefs(), 10, FakeStats(), rng))[0] for _ in range(n))
    expected = {"p1": 16 / 21, "p2": 4 / 21, "p4": 1 / 21}
    for name, share in expected.items():
        assert abs(firsts[name] / n - share) < 0.03, (name, firsts[name] / n, share)
    # every draw is a permutation of all three
    assert set(firsts) == set(expected)


def test_default_balance_spreads_equal_prices_evenly() -> None:
    m = model(ep("a", 1), ep("b", 1))
    rng = random.Random(7)
    n = 2000
    firsts = Counter(names(plan([m], req(), ProviderPrefs(), 10, FakeStats(), rng))[0] for _ in range(n))
    assert abs(firsts["a"] / n - 0.5) < 0.05


def test_free_endpoints_outweigh_paid_ones() -> None:
    m = model(ep("paid", 0.01), ep("free", 0))
    for seed in range(50):
        assert run(m, seed=seed)[0] == "free"


def test_recently_failed_goes_last_in_default_and_sorted_orders() -> None:
    m = model(ep("a", 1), ep("b", 5), ep("c", 1))
    stats = FakeStats(failed={"a"})
    for seed in range(20):
        assert run(m, stats=stats, seed=seed)[-1] == "a"
    assert run(m, prefs={"sort": "price"}, stats=stats) == ["c", "b", "a"]


def test_recently_failed_is_not_moved_when_explicitly_ordered() -> None:
    m = model(ep("a"), ep("b"))
    assert run(m, prefs={"order": ["a"]}, stats=FakeStats(failed={"a"})) == ["a", "b"]


def test_preferred_min_throughput_deprioritises_slow_endpoints() -> None:
    m = model(ep("cheap_slow", 1), ep("dear_fast", 5), ep("unknown", 2))
    stats = FakeStats(throughput={"cheap_slow": 20.0, "dear_fast": 150.0})
    got = run(m, prefs={"sort": "price", "preferred_min_throughput": 100}, stats=stats)
    assert got == ["unknown", "dear_fast", "cheap_slow"]  # no data is not "slow"
    got = run(m, prefs={"sort": "price", "preferred_min_throughput": {"p50": 10}}, stats=stats)
    assert got == ["cheap_slow", "unknown", "dear_fast"]


def test_preferred_max_latency_deprioritises_laggy_endpoints() -> None:
    m = model(ep("cheap_laggy", 1), ep("dear_snappy", 5))
    stats = FakeStats(latency={"cheap_laggy": 3.0, "dear_snappy": 0.2})
    assert run(m, prefs={"sort": "price", "preferred_max_latency": 1}, stats=stats) == ["dear_snappy", "cheap_laggy"]
    assert run(m, prefs={"sort": "price", "preferred_max_latency": {"p50": 5}}, stats=stats) == [
        "cheap_laggy",
        "dear_snappy",
    ]


def test_models_keep_the_callers_order() -> None:
    m1 = model(ep("a"), ep("b"), mid="m1")
    m2 = model(ep("c"), mid="m2")
    got = run([m1, m2])
    assert sorted(got[:2]) == ["a", "b"] and got[2] == "c"
    assert run([m2, m1])[0] == "c"


def test_a_model_that_cannot_serve_is_skipped_in_a_models_list() -> None:
    m1 = model(ep("a", ctx=100), mid="m1")
    m2 = model(ep("b", ctx=100_000), mid="m2")
    assert run([m1, m2], prompt=5000) == ["b"]


def test_plan_with_the_real_health_tracker() -> None:
    now = [0.0]
    h = HealthTracker(lambda: now[0], min_requests=2)
    m = model(ep("a"), ep("b"))
    key_a = endpoint_key("m", m.endpoints[0])
    for _ in range(3):
        h.failure(key_a)
    assert h.state(key_a) == "open"
    assert names(plan([m], req(), ProviderPrefs(), 1, h, random.Random(0))) == ["b"]


# ---- parsing ---------------------------------------------------------------------------------


def test_parse_prefs_defaults_and_full() -> None:
    assert parse_prefs(None) == ProviderPrefs()
    assert parse_prefs({}) == ProviderPrefs()
    p = parse_prefs(
        {
            "order": ["a"],
            "only": ["a", "b"],
            "ignore": ["c"],
            "allow_fallbacks": False,
            "require_parameters": True,
            "sort": "latency",
            "max_price": {"prompt": 1, "completion": "2.5"},
            "preferred_min_throughput": {"p50": 50, "p90": 10},
            "preferred_max_latency": 1.5,
            "data_collection": "deny",  # accepted, not used
        }
    )
    assert p == ProviderPrefs(
        order=["a"],
        only=["a", "b"],
        ignore=["c"],
        allow_fallbacks=False,
        require_parameters=True,
        sort="latency",
        max_prompt_price=Decimal(1),
        max_completion_price=Decimal("2.5"),
        min_throughput=50.0,
        max_latency=1.5,
    )


@pytest.mark.parametrize(
    "raw",
    [
        "fast",
        ["a"],
        {"order": "a"},
        {"order": [1]},
        {"only": "a"},
        {"ignore": [None]},
        {"allow_fallbacks": "no"},
        {"require_parameters": 1},
        {"sort": "cheapest"},
        {"sort": {"by": "speed"}},
        {"max_price": 3},
        {"max_price": {"prompt": "lots"}},
        {"max_price": {"completion": True}},
        {"max_price": {"prompt": [1]}},
        {"preferred_min_throughput": "fast"},
        {"preferred_min_throughput": {"p90": 10}},
        {"preferred_max_latency": True},
    ],
)
def test_bad_provider_objects_are_invalid_requests(raw: Any) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse_prefs(raw)
    assert e.value.status == 400
    assert "provider" in e.value.message


# ---- Gateway.route: models list and variants ---------------------------------------------------


def gateway() -> Gateway:
    def e(p: str, price: float) -> dict[str, Any]:
        return {"provider": p, "model": f"up-{p}", "pricing": {"input": price, "output": price}}

    raw = {
        "providers": {p: {"api": "openai", "base_url": "http://127.0.0.1:9", "api_key": "k"} for p in ("a", "b", "c")},
        "models": {
            "m1": {"context_length": 1000, "endpoints": [e("a", 5), e("b", 1)]},
            "m2": {"context_length": 1000, "endpoints": [e("c", 2)]},
        },
    }
    return Gateway(parse_config(raw, env={}), {}, cast(Ledger, None), HealthTracker())


def route(body: dict[str, Any]) -> tuple[list[str], ProviderPrefs]:
    r = gateway().route(body, _req_for(body))
    return [m.id for m in r.models], r.prefs


def _req_for(body: dict[str, Any]) -> ChatRequest:
    return ChatRequest(model=body.get("model", ""), messages=[Message(role="user", content=[TextPart(text="x")])])


def test_route_models_list_appends_fallback_models_once() -> None:
    assert route({"model": "m1", "models": ["m2", "m1"]})[0] == ["m1", "m2"]
    assert route({"model": "", "models": ["m2", "m1"]})[0] == ["m2", "m1"]


def test_route_skips_unknown_fallback_models_but_not_a_lone_unknown_model() -> None:
    assert route({"model": "m1", "models": ["nope", "m2"]})[0] == ["m1", "m2"]
    assert route({"model": "nope", "models": ["m2"]})[0] == ["m2"]
    with pytest.raises(NotFound):
        route({"model": "nope"})
    with pytest.raises(NotFound):
        route({"model": "nope", "models": ["nope2"]})


@pytest.mark.parametrize("bad", ["m2", [1], {"m": 1}])
def test_route_bad_models_list(bad: Any) -> None:
    with pytest.raises(InvalidRequest, match="models"):
        route({"model": "m1", "models": bad})


def test_route_model_required() -> None:
    with pytest.raises(InvalidRequest, match="model"):
        route({"model": ""})


def test_route_bad_provider_object() -> None:
    with pytest.raises(InvalidRequest, match="provider"):
        route({"model": "m1", "provider": {"sort": "random"}})


@pytest.mark.parametrize(("variant", "sort"), [("nitro", "throughput"), ("floor", "price")])
def test_route_variants_set_the_sort(variant: str, sort: str) -> None:
    models, prefs = route({"model": f"m1:{variant}"})
    assert models == ["m1"]
    assert prefs.sort == sort


def test_route_variant_does_not_override_an_explicit_sort() -> None:
    assert route({"model": "m1:floor", "provider": {"sort": "latency"}})[1].sort == "latency"


def test_floor_plans_cheapest_first() -> None:
    gw = gateway()
    r = gw.route({"model": "m1:floor"}, _req_for({"model": "m1:floor"}))
    for seed in range(10):
        got = names(plan(r.models, _req_for({"model": "m1"}), r.prefs, 1, gw.health, random.Random(seed)))
        assert got == ["b", "a"]


def test_nitro_plans_fastest_first() -> None:
    gw = gateway()
    m1 = gw.config.models["m1"]
    key_a, key_b = (endpoint_key("m1", e) for e in m1.endpoints)  # a is dearer but faster
    gw.health.success(key_a, 0.5, 200.0)
    gw.health.success(key_b, 0.5, 20.0)
    r = gw.route({"model": "m1:nitro"}, _req_for({"model": "m1:nitro"}))
    assert names(plan(r.models, _req_for({"model": "m1"}), r.prefs, 1, gw.health)) == ["a", "b"]


def test_client_model_aliases_resolve_to_catalogue_models() -> None:
    from keeprouter.config import parse_config
    from keeprouter.formats.canonical import ChatRequest, Message, TextPart
    from keeprouter.gateway import Gateway
    from keeprouter.routing.health import HealthTracker

    cfg = parse_config({}, env={"ANTHROPIC_API_KEY": "k", "MISTRAL_API_KEY": "k"})
    gw = Gateway(cfg, {}, None, HealthTracker())  # type: ignore[arg-type]
    for sent, expected in (
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),  # Claude Code's dated snapshot names
        ("anthropic/claude-haiku-4-5", "claude-haiku-4-5"),  # OpenRouter's author/slug
        ("mistralai/codestral-latest", "codestral-latest"),
    ):
        req = ChatRequest(model=sent, messages=[Message(role="user", content=[TextPart(text="x")])])
        assert gw.route({}, req).models[0].id == expected
