"""`metrics_token`: a scrape-only secret that opens GET /metrics and nothing else, so a Prometheus
config never holds the admin key (which can mint keys). The admin key still opens /metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
from support.gateway import ADMIN_KEY, run_gateway, sqlite_url, two_format_config
from support.raw import chat_body
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.config import ConfigError, load_config, parse_config

TOKEN = "scrape-only-0123456789abcdef"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_the_token_opens_metrics_and_nothing_else(
    tmp_path: Path,
    openai_upstream: OpenAIUpstream,
    anthropic_upstream: AnthropicUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    openai_upstream.default = Reply(text="hi", input_tokens=10, output_tokens=4)
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path), metrics_token=TOKEN)
    async with run_gateway(cfg) as gw, aiohttp.ClientSession() as s:
        user = (await gw.create_key("metered", limit=5.0))["key"]
        body = chat_body("openai", "gpt-test", stream=False, max_tokens=5)
        async with s.post(gw.url + "/v1/chat/completions", json=body, headers=bearer(user)) as r:
            assert r.status == 200
        for secret in (TOKEN, ADMIN_KEY):
            async with s.get(gw.url + "/metrics", headers=bearer(secret)) as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
                assert "keeprouter_requests_total" in await r.text()
        for headers in (bearer(TOKEN + "x"), bearer(TOKEN[:-1]), {"x-api-key": TOKEN}, {}):
            async with s.get(gw.url + "/metrics", headers=headers) as r:
                assert r.status == 401, headers
        async with s.get(gw.url + "/metrics", headers=bearer(user)) as r:
            assert r.status == 403  # a user key is a key, not the scrape token
        # elsewhere the token is no key at all: the admin API and inference refuse it
        for method, url, json in (
            ("GET", "/api/v1/keys", None),
            ("POST", "/api/v1/keys", {"name": "minted"}),
            ("GET", "/api/v1/key", None),
            ("POST", "/v1/chat/completions", body),
            ("POST", "/v1/messages", chat_body("anthropic", "claude-test", stream=False, max_tokens=5)),
        ):
            for headers in (bearer(TOKEN), {"x-api-key": TOKEN}):
                async with s.request(method, gw.url + url, json=json, headers=headers) as r:
                    assert r.status == 401, (method, url, headers)
        async with s.get(gw.url + "/api/v1/keys", headers=bearer(ADMIN_KEY)) as r:
            assert [k["name"] for k in (await r.json())["data"] if k["name"] == "minted"] == []
    assert TOKEN not in caplog.text  # never logged


def test_config_checks_the_token_without_quoting_it(tmp_path: Path) -> None:
    base = {"admin_key": ADMIN_KEY}
    assert parse_config({**base, "metrics_token": TOKEN}, env={}).metrics_token == TOKEN
    assert parse_config(base, env={}).metrics_token is None
    assert parse_config({**base, "metrics_token": ""}, env={}).metrics_token is None  # ${UNSET_VAR:-}
    for bad in ("short-secret", 12345678901234567890, "has a space in it 0123456789", ADMIN_KEY + "-but-equal"):
        raw = {**base, "metrics_token": bad}
        if bad == ADMIN_KEY + "-but-equal":
            raw["admin_key"] = bad
        with pytest.raises(ConfigError, match="metrics_token") as e:
            parse_config(raw, env={})
        assert str(bad) not in str(e.value)
    f = tmp_path / "c.yaml"
    f.write_text("metrics_token: ${SCRAPE_TOKEN}\n")
    cfg = load_config(f, env={"SCRAPE_TOKEN": TOKEN})
    assert cfg.metrics_token == TOKEN and TOKEN not in repr(cfg)
