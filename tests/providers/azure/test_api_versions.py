"""What each Azure API version takes, at the wire: `max_completion_tokens` and `stream_options`
came to the deployments API with 2024-09-01-preview (older versions answer "Unrecognized request
argument supplied"), and a reasoning deployment refuses `max_tokens` on every API."""

from __future__ import annotations

from contextlib import aclosing
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from upstreams.azure_server import AzureUpstream
from upstreams.script import Reply

from keeprouter.clients.openai_chat.request import parse_request
from keeprouter.config import EndpointConfig, Pricing, ProviderConfig, Timeouts, parse_config
from keeprouter.formats.canonical import ChatRequest, Finish, StreamEvent, TextDelta
from keeprouter.providers.azure import AzureAdapter

KEY = AzureUpstream.DEFAULT_KEY


def provider(base: str, version: str | None) -> ProviderConfig:
    row: dict[str, Any] = {"api": "azure", "base_url": base, "api_key": KEY}
    if version is not None:
        row["api_version"] = version
    return parse_config({"providers": {"az": row}}, env={}).providers["az"]


def endpoint(model: str = "gpt4o-prod") -> EndpointConfig:
    timeouts = Timeouts(connect=2, first_byte=5, idle=5)
    return EndpointConfig(
        "az", model, Pricing(Decimal(1), Decimal(2)), frozenset({"streaming"}), 100000, None, timeouts
    )


def request(**kw: Any) -> ChatRequest:
    return parse_request({"model": "m", "messages": [{"role": "user", "content": "Hi"}], **kw})


async def post(up: AzureUpstream, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.post(up.url + path, json=body, headers={"api-key": KEY}) as r:
        return r.status, await r.json()


HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        (
            "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-06-01",
            {"messages": HI, "stream": True, "stream_options": {"include_usage": True}},
            "Unrecognized request argument supplied: stream_options",
        ),
        (
            "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-08-01-preview",
            {"messages": HI, "max_completion_tokens": 10},
            "Unrecognized request argument supplied: max_completion_tokens",
        ),
        (
            "/openai/deployments/o4mini/chat/completions?api-version=2024-12-01-preview",
            {"messages": HI, "max_tokens": 10},
            "'max_tokens' is not supported with this model",
        ),
        ("/openai/v1/chat/completions", {"model": "o4mini", "messages": HI, "max_tokens": 10}, "max_completion_tokens"),
    ],
)
async def test_the_emulator_refuses_what_the_version_does_not_take(
    azure_upstream: AzureUpstream, path: str, body: dict[str, Any], says: str
) -> None:
    status, answer = await post(azure_upstream, path, body)
    assert status == 400 and answer["error"]["type"] == "invalid_request_error"
    assert says in answer["error"]["message"]


async def test_an_older_version_streams_in_one_request_without_stream_options(azure_upstream: AzureUpstream) -> None:
    azure_upstream.script(Reply(text="Hello there"))
    a = AzureAdapter(provider(azure_upstream.url, "2024-06-01"))
    try:
        async with aclosing(a.stream(request(stream=True, max_tokens=20), endpoint(), {})) as s:
            events: list[StreamEvent] = [ev async for ev in s]
    finally:
        await a.close()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there"
    assert any(isinstance(e, Finish) for e in events)
    [rec] = azure_upstream.requests  # not refused once and learned: never sent
    assert "stream_options" not in rec.body and rec.body["max_tokens"] == 20


@pytest.mark.parametrize("version", [None, "2024-12-01-preview"])
async def test_a_reasoning_deployment_gets_max_completion_tokens(
    azure_upstream: AzureUpstream, version: str | None
) -> None:
    azure_upstream.script(Reply(text="4"))
    a = AzureAdapter(provider(azure_upstream.url, version))
    try:
        r = await a.complete(request(max_tokens=300), endpoint("o4mini"), {})
    finally:
        await a.close()
    assert r.content[0].text == "4"  # type: ignore[union-attr]
    [rec] = azure_upstream.requests
    assert rec.body["max_completion_tokens"] == 300 and "max_tokens" not in rec.body


async def test_a_reasoning_deployment_refusing_temperature_is_learned_for_it_alone(
    azure_upstream: AzureUpstream,
) -> None:
    """An o-series deployment takes only the default temperature (Azure's 400 "Unsupported value:
    'temperature' ... Only the default (1) value is supported"): learned once, for that deployment;
    another deployment still gets the caller's temperature."""
    azure_upstream.script(Reply(text="4"), Reply(text="5"), Reply(text="warm"))
    a = AzureAdapter(provider(azure_upstream.url, None))
    try:
        first = await a.complete(request(temperature=0.7), endpoint("o4mini"), {})
        second = await a.complete(request(temperature=0.7), endpoint("o4mini"), {})
        other = await a.complete(request(temperature=0.7), endpoint("gpt4o-prod"), {})
    finally:
        await a.close()
    assert [r.content[0].text for r in (first, second, other)] == ["4", "5", "warm"]  # type: ignore[union-attr]
    sent = [rec.body.get("temperature") for rec in azure_upstream.requests]
    assert sent == [0.7, None, None, 0.7]  # refused once, resent without; never again; other kept
