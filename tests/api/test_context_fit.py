"""Context that does not fit (issue 9 §2), through the real SDKs and the emulated upstreams.

Claude Code asks `max_tokens: 32000` of every model; on a 32k-context model its ~76 KB request
(24 tools) fits only with a smaller output budget. The gateway lowers the budget it sends, serves,
tells the caller nothing, records the change on the generation and reserves credit for the lowered
budget. A prompt that fits no endpoint is a 400 in the caller's own provider wording, never a 404.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
import pytest_asyncio
from support.claude_code_request import body_size, claude_code_request
from support.clients import anthropic_client, openai_client
from support.gateway import RunningGateway, run_gateway, sqlite_url
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.clients.anthropic_messages import request as anthropic_fmt
from keeprouter.formats import tokens
from keeprouter.routing.fit import MIN_OUTPUT, prompt_bound

CONTEXT = 32_768
MODELS = {"openai": "small-oa", "anthropic": "small-an"}  # upstream format -> a 32k-context model


def _model(provider: str) -> dict[str, Any]:
    ep = {
        "provider": provider,
        "model": f"up-{provider}",
        "pricing": {"input": 3.0, "output": 15.0},
        "capabilities": ["streaming", "tools"],
    }
    return {"name": provider, "maker": "Test", "context_length": CONTEXT, "endpoints": [ep]}


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    cfg = {
        "database": sqlite_url(tmp_path),
        "admin_key": "sk-kr-admin-test",
        "providers": {
            "oa": {"api": "openai", "base_url": openai_upstream.url, "api_key": "sk-up-openai"},
            "an": {"api": "anthropic", "base_url": anthropic_upstream.url, "api_key": "sk-up-anthropic"},
        },
        "models": {MODELS["openai"]: _model("oa"), MODELS["anthropic"]: _model("an")},
    }
    async with run_gateway(cfg) as g:
        yield g


def upstream(fmt: str, oa: OpenAIUpstream, an: AnthropicUpstream) -> OpenAIUpstream | AnthropicUpstream:
    return oa if fmt == "openai" else an


async def generation(gw: RunningGateway, gen_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            async with s.get(gw.url + "/api/v1/generation", params={"id": gen_id}, headers=headers) as r:
                if r.status == 200:
                    data: dict[str, Any] = (await r.json())["data"]
                    return data
            await asyncio.sleep(0.01)
    raise AssertionError(f"generation {gen_id} was never recorded")


def test_the_recorded_request_is_claude_code_sized() -> None:
    body = claude_code_request("m")
    assert len(body["tools"]) == 24
    assert 72_000 <= body_size(body) <= 80_000
    estimate = tokens.estimate_request(anthropic_fmt.parse_request(body))
    assert 17_000 <= estimate <= 21_000  # "~19k tokens"
    assert estimate + 32_000 > CONTEXT  # the sum does not fit a 32k window; the prompt does


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [True, False])
async def test_claude_code_on_a_32k_model_is_served_with_a_lowered_output_budget(
    gw: RunningGateway,
    openai_upstream: OpenAIUpstream,
    anthropic_upstream: AnthropicUpstream,
    fmt: str,
    stream: bool,
) -> None:
    up = upstream(fmt, openai_upstream, anthropic_upstream)
    up.script(Reply(text="Done.", input_tokens=19_000, output_tokens=3))
    body = claude_code_request(MODELS[fmt], stream=stream)
    kw = {k: body[k] for k in ("model", "max_tokens", "system", "tools", "messages", "metadata")}
    async with anthropic_client(gw.url, gw.admin_key) as client:
        if stream:
            async with client.messages.stream(**kw) as s:
                msg = await s.get_final_message()
        else:
            msg = await client.messages.create(**kw)
    assert [b.text for b in msg.content if b.type == "text"] == ["Done."]
    assert msg.stop_reason == "end_turn"

    [rec] = up.requests
    sent = rec.body["max_tokens"]
    estimate = tokens.estimate_request(anthropic_fmt.parse_request(body))
    # the most that surely fits beside the prompt, with the estimate's error bound taken off
    assert sent == CONTEXT - prompt_bound(estimate)
    assert 5_000 < sent < 32_000
    assert len(rec.body["tools"]) == 24

    gen = await generation(gw, msg.id)
    assert gen["status"] == "ok"
    [served] = gen["provider_responses"]
    assert served == {
        "provider": "oa" if fmt == "openai" else "an",
        "model": MODELS[fmt],
        "status": 200,
        "max_tokens_requested": 32_000,
        "max_tokens_sent": sent,
    }


async def test_the_credit_reservation_uses_the_lowered_budget(
    gw: RunningGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    body = claude_code_request(MODELS["anthropic"], stream=False)
    estimate = tokens.estimate_request(anthropic_fmt.parse_request(body))
    lowered = CONTEXT - prompt_bound(estimate)
    per_token_in, per_token_out = 3.0 / 1e6, 15.0 / 1e6
    # a limit between the lowered worst case and the requested one: only the lowered one is admitted
    limit = round(estimate * per_token_in + (lowered + 32_000) / 2 * per_token_out, 4)
    assert estimate * per_token_in + lowered * per_token_out < limit < estimate * per_token_in + 0.48
    key = (await gw.create_key("budget", limit=limit))["key"]
    anthropic_upstream.script(Reply(text="ok", output_tokens=2))
    kw = {k: body[k] for k in ("model", "max_tokens", "system", "tools", "messages")}
    async with anthropic_client(gw.url, key) as client:
        msg = await client.messages.create(**kw)
    assert msg.content[0].type == "text"
    assert anthropic_upstream.requests[0].body["max_tokens"] == lowered


def _too_long_body(model: str) -> dict[str, Any]:
    body = claude_code_request(model, stream=False)
    body["messages"][0]["content"][1]["text"] = "lorem ipsum dolor sit amet " * 6_000  # ~40k tokens more
    return body


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_a_prompt_too_long_for_every_endpoint_is_anthropics_400_for_messages_callers(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, fmt: str
) -> None:
    body = _too_long_body(MODELS[fmt])
    kw = {k: body[k] for k in ("model", "max_tokens", "system", "tools", "messages")}
    async with anthropic_client(gw.url, gw.admin_key) as client:
        with pytest.raises(anthropic.BadRequestError) as e:
            await client.messages.create(**kw)
    assert e.value.status_code == 400
    err = e.value.body["error"]  # type: ignore[index]
    assert err["type"] == "invalid_request_error"
    m = re.fullmatch(r"prompt is too long: (\d+) tokens > (\d+) maximum", err["message"])
    assert m, err["message"]
    assert int(m.group(1)) > int(m.group(2)) == CONTEXT - MIN_OUTPUT
    assert not openai_upstream.requests and not anthropic_upstream.requests


@pytest.mark.parametrize("stream", [True, False])
async def test_a_prompt_too_long_for_every_endpoint_is_context_length_exceeded_for_openai_callers(
    gw: RunningGateway, anthropic_upstream: AnthropicUpstream, stream: bool
) -> None:
    text = "lorem ipsum dolor sit amet " * 6_000
    async with openai_client(gw.url, gw.admin_key) as client:
        with pytest.raises(openai.BadRequestError) as e:
            await client.chat.completions.create(
                model=MODELS["anthropic"], messages=[{"role": "user", "content": text}], stream=stream
            )
    assert e.value.status_code == 400
    assert e.value.code == "context_length_exceeded"
    assert e.value.type == "invalid_request_error"
    assert e.value.param == "messages"
    assert f"maximum context length is {CONTEXT - MIN_OUTPUT} tokens" in e.value.message
    assert not anthropic_upstream.requests


async def test_an_existing_model_is_never_reported_missing_when_nothing_fits(gw: RunningGateway) -> None:
    body = _too_long_body(MODELS["openai"])
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/messages", json=body, headers={"x-api-key": gw.admin_key}) as r:
            assert r.status == 400
            data = await r.json()
    assert data["error"]["type"] != "not_found_error"
    assert "does not exist" not in data["error"]["message"]
