"""`/metrics` on an in-process gateway: counters equal the requests sent, by outcome; tokens and cost
match the generations; labels stay bounded (an unknown model is "other") and hold no key; the hot
path's cost per settled generation is measured (printed with -s)."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from support.gateway import ADMIN_KEY, run_gateway, sqlite_url, two_format_config
from support.raw import auth, chat_body, path
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.observe.metrics import DURATION_BUCKETS, Metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(got: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return got.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_every_request_by_outcome_with_bounded_labels(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    openai_upstream.default = Reply(text="hi", input_tokens=10, output_tokens=4)
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
    async with run_gateway(cfg) as gw, aiohttp.ClientSession() as s:
        user = (await gw.create_key("metered", limit=5.0))["key"]
        for stream in (False, False, True):
            async with s.post(gw.url + path("openai"), json=chat_body("openai", "gpt-test", stream=stream,
                              max_tokens=20), headers=auth("openai", user)) as r:  # fmt: skip
                assert r.status == 200
                await r.read()
        for model in ("no-such-model-1", "no-such-model-2"):
            async with s.post(gw.url + path("openai"), json=chat_body("openai", model, stream=False, max_tokens=5),
                              headers=auth("openai", user)) as r:  # fmt: skip
                assert r.status == 404
        async with s.get(gw.url + "/metrics", headers=auth("openai", user)) as r:
            assert r.status == 403  # a user key may not read them
        async with s.get(gw.url + "/metrics", headers=auth("openai", ADMIN_KEY)) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
    got = samples(text)
    ok = {"model": "gpt-test", "provider": "oa", "api": "openai"}
    assert value(got, "keeprouter_requests_total", **ok, status="ok") == 3
    assert value(got, "keeprouter_requests_total", model="other", provider="none", api="openai", status="404") == 2
    assert value(got, "keeprouter_tokens_total", model="gpt-test", provider="oa", type="prompt") == 30
    assert value(got, "keeprouter_tokens_total", model="gpt-test", provider="oa", type="completion") == 12
    # 3 x (10 x $1 + 4 x $2) per 1M tokens
    assert Decimal(str(value(got, "keeprouter_cost_usd_total", model="gpt-test", provider="oa"))) == Decimal("0.000054")
    assert value(got, "keeprouter_request_duration_seconds_count", **ok) == 3
    assert value(got, "keeprouter_time_to_first_token_seconds_count", **ok) == 3
    assert value(got, "keeprouter_request_duration_seconds_bucket", **ok, le=str(DURATION_BUCKETS[-1])) == 3
    assert value(got, "keeprouter_streams_in_flight") == 0
    assert value(got, "keeprouter_endpoint_up", model="gpt-test", provider="oa") == 1
    assert value(got, "keeprouter_endpoint_circuit_state", model="gpt-test", provider="oa") == 0
    assert user not in text and ADMIN_KEY not in text and "metered" not in text and "no-such-model" not in text


def test_a_settled_generation_costs_microseconds_on_the_hot_path() -> None:
    m = Metrics(["gpt-test"])
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        m.settled("gpt-test", "oa", "openai", "ok", 0.2, 0.05, 100, 20, 0, 0, Decimal("0.00014"))
    per = (time.perf_counter() - t0) / n
    print(f"metrics: {per * 1e6:.1f} us per settled generation")
    assert per < 200e-6, per  # generous on a loaded 2-core machine; ~10 us measured idle
