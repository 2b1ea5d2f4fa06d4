"""`keeprouter catalogue import` end to end over loopback: a recorded OpenRouter list and a host's own
/v1/models, served by a local upstream, become a config file that loads, prices exactly and serves."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from support.gateway import run_gateway, sqlite_url
from upstreams.base import Received
from upstreams.openai_server import OpenAIUpstream

from keeprouter.cli import main
from keeprouter.config import load_config

LIST = (Path(__file__).parent / "catalogue" / "fixtures" / "openrouter_models.json").read_bytes()
KEY = OpenAIUpstream.DEFAULT_KEY


def _with_list(up: OpenAIUpstream) -> OpenAIUpstream:
    """The upstream also serves the recorded OpenRouter list, at OpenRouter's path."""

    async def models(request: web.Request, rec: Received) -> web.StreamResponse:
        return web.Response(body=LIST, content_type="application/json")

    up.add_route("GET", "/api/v1/models", models)
    return up


async def _import(*argv: str) -> None:
    await asyncio.to_thread(main, ["catalogue", "import", *argv], {})


async def test_an_openrouter_list_becomes_a_config_that_loads_prices_exactly_and_serves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "imported.yaml"
    async with _with_list(OpenAIUpstream()) as up:
        url = f"{up.base_url}/api/v1/models"
        await _import(url, "--provider", "router", "--base-url", f"{up.base_url}/v1", "--output", str(out),
                      "--as-of", "2026-12-07")  # fmt: skip
        assert "6 models written" in capsys.readouterr().err  # openrouter/auto has no fixed price

        config = load_config(out, env={"ROUTER_API_KEY": KEY})
        sonnet = config.models["anthropic/claude-sonnet-4.5"]
        assert (sonnet.name, sonnet.maker, sonnet.context_length) == ("Claude Sonnet 4.5", "Anthropic", 1000000)
        [ep] = sonnet.endpoints
        assert (ep.provider, ep.model, ep.max_output_tokens) == ("router", "anthropic/claude-sonnet-4.5", 64000)
        p = ep.pricing
        prices = (p.input, p.output, p.cache_read, p.cache_write)
        assert prices == (Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"))
        assert (p.source, p.as_of) == (url, dt.date(2026, 12, 7))
        llama = config.models["meta-llama/llama-3.3-70b-instruct"].endpoints[0].pricing
        assert (llama.input, llama.output) == (Decimal("0.038"), Decimal("0.12"))
        assert config.models["qwen/qwen3-embedding-8b"].modality == "text->embedding"
        assert "openrouter/auto" not in config.models and "# openrouter/auto:" in out.read_text()

        # the imported file serves a request, billed at the imported price
        raw: dict[str, Any] = yaml.safe_load(out.read_text().replace("${ROUTER_API_KEY}", KEY))
        async with run_gateway({**raw, "database": sqlite_url(tmp_path)}) as gw:
            key = (await gw.create_key("import"))["key"]
            body = {"model": "anthropic/claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]}
            async with (
                aiohttp.ClientSession() as s,
                s.post(gw.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as r,
            ):
                assert r.status == 200, await r.text()
                answer = await r.json()
    assert answer["provider"] == "router"
    usage = answer["usage"]
    expected = (usage["prompt_tokens"] * Decimal(3) + usage["completion_tokens"] * Decimal(15)) / 1_000_000
    assert Decimal(str(usage["cost"])) == expected
    assert up.requests[-1].model == "anthropic/claude-sonnet-4.5" and up.requests[-1].api_key == KEY


async def test_a_host_model_list_is_read_with_its_key_and_left_unpriced_for_the_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "host.yaml"
    monkeypatch.setenv("MYHOST_KEY", KEY)  # the host refuses its list without it
    async with OpenAIUpstream(models=("qwen3-coder", "llama-4-scout")) as up:
        await _import(f"{up.base_url}/v1/models", "--provider", "myhost", "--api-key-env", "MYHOST_KEY",
                      "-o", str(out), "--match", "qwen*")  # fmt: skip
    assert up.requests[0].api_key == KEY
    text = out.read_text()
    loaded = yaml.safe_load(text)
    # the provider is written, pointing where the list was, its key by reference, never by value
    written = {"api": "openai", "base_url": f"{up.base_url}/v1", "api_key": "${MYHOST_KEY}"}
    assert loaded["providers"] == {"myhost": written}
    assert KEY not in text
    assert loaded["models"] is None and "#   qwen3-coder:" not in text and "# qwen3-coder:" in text
    assert "llama-4-scout" not in text and "PRICE UNKNOWN" in text
    config = load_config(out, env={"MYHOST_KEY": KEY})  # loads; the unpriced model is not served
    assert "qwen3-coder" not in config.models and "myhost" in config.providers


async def test_merge_adds_to_a_config_and_keeps_what_the_operator_wrote(tmp_path: Path) -> None:
    out = tmp_path / "keeprouter.yaml"
    mine = ("providers:\n  router:\n    api: openai\n    base_url: http://127.0.0.1:9/v1\n    api_key: k\n"
            "models:\n  mistralai/ministral-8b:   # my contract price\n    name: Mine\n"
            "    endpoints: [{provider: router, model: m8, pricing: {input: 0.05, output: 0.05}}]\n")  # fmt: skip
    out.write_text(mine)
    async with _with_list(OpenAIUpstream()) as up:
        with pytest.raises(SystemExit):  # an existing file is never overwritten
            await _import(f"{up.base_url}/api/v1/models", "--provider", "router", "-o", str(out))
        assert out.read_text() == mine
        await _import(f"{up.base_url}/api/v1/models", "--provider", "router", "-o", str(out), "--merge",
                      "--match", "mistralai/*", "--match", "openai/*")  # fmt: skip
    text = out.read_text()
    assert text.startswith(mine)  # appended after the operator's entry, nothing of it rewritten
    config = load_config(out, env={})
    assert config.models["mistralai/ministral-8b"].endpoints[0].pricing.input == Decimal("0.05")
    assert config.models["openai/o4-mini"].endpoints[0].pricing.input == Decimal("1.1")
    assert text.count("router:") == 1  # the provider was already there
