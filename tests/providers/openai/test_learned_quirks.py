"""A strict OpenAI-compatible host (Mistral) refuses fields other hosts accept. The adapter learns
which from the host's own 400/422, resends without them, and never sends them to it again."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from support.clients import anthropic_client, call_anthropic, call_openai, openai_client
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.providers.openai import hosts

MISTRAL_422 = {
    "object": "error",
    "message": {
        "detail": [
            {
                "type": "extra_forbidden",
                "loc": ["body", "stream_options", "include_usage"],
                "msg": "Extra inputs are not permitted",
                "input": True,
            }
        ]
    },
    "type": "invalid_request_error",
    "param": None,
    "code": None,
}


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


async def test_refused_stream_options_is_learned_and_dropped(
    gw: RunningGateway, openai_upstream: OpenAIUpstream
) -> None:
    openai_upstream.script(Fault(status=422, body=MISTRAL_422), Reply(text="first"), Reply(text="second"))
    async with openai_client(gw.url, gw.admin_key) as c:
        r1 = await call_openai(c, True, model="gpt-test", messages=[{"role": "user", "content": "hi"}])
        r2 = await call_openai(c, True, model="gpt-test", messages=[{"role": "user", "content": "again"}])
    assert (r1.text, r2.text) == ("first", "second")
    bodies = [r.body for r in openai_upstream.requests]
    assert len(bodies) == 3
    assert "stream_options" in bodies[0]
    assert "stream_options" not in bodies[1] and "stream_options" not in bodies[2]  # learned, kept


async def test_tool_id_rule_is_learned(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    rule = {
        "object": "error",
        "message": "Tool call id was toolu_01abc but must be a-z, A-Z, 0-9, with a length of 9.",
        "type": "invalid_request_message_error",
    }
    openai_upstream.script(Fault(status=400, body=rule), Reply(text="done"))
    msgs = [
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01abc", "name": "run", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01abc", "content": "ok"}]},
    ]
    tools = [{"name": "run", "input_schema": {"type": "object"}}]
    async with anthropic_client(gw.url, gw.admin_key) as c:
        r = await call_anthropic(c, False, model="gpt-test", messages=msgs, tools=tools)
    assert r.text == "done"
    sent = openai_upstream.requests[-1].body["messages"]
    new_id = sent[1]["tool_calls"][0]["id"]
    assert re.fullmatch(r"[a-zA-Z0-9]{9}", new_id) and sent[2]["tool_call_id"] == new_id


async def test_a_plain_bad_request_is_not_retried(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    import openai

    openai_upstream.script(Fault(status=400, body={"error": {"message": "prompt is too long", "type": "x"}}))
    async with openai_client(gw.url, gw.admin_key) as c:
        with pytest.raises(openai.BadRequestError):
            await call_openai(c, False, model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert len(openai_upstream.requests) == 1


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ('[{"type":"extra_forbidden","loc":["body","user"],"msg":"Extra inputs are not permitted"}]', "user"),
        ("Unrecognized request argument supplied: top_k", "top_k"),
    ],
)
def test_refused_field_wordings(message: str, field: str) -> None:
    learned = hosts.learn(hosts.PLAIN, message)
    assert learned is not None and field in learned.drop
    assert hosts.learn(learned, message) is None  # nothing new the second time


def test_mistral_host_never_gets_stream_options() -> None:
    q = hosts.quirks_for("https://api.mistral.ai/v1")
    body = hosts.apply(q, {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "user": "u"})
    assert body == {"model": "m", "stream": True}


@pytest.mark.parametrize(
    ("message", "drop", "field"),
    [
        (
            "Unsupported value: 'temperature' does not support 0.7 with this model. "
            "Only the default (1) value is supported.",
            {"temperature"},
            "max_tokens",
        ),
        ("Unsupported parameter: 'top_p' is not supported with this model.", {"top_p"}, "max_tokens"),
        (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            set(),
            "max_completion_tokens",
        ),
    ],
)
def test_reasoning_models_refusals_are_learned(message: str, drop: set[str], field: str) -> None:
    learned = hosts.learn(hosts.PLAIN, message)
    assert learned is not None and learned.drop == drop and learned.max_tokens_field == field


def test_a_limit_is_never_learned_away() -> None:
    """`max_tokens` refused without a replacement named, or a field that is not a sampling knob, is
    the caller's 400 to see: dropping it would lift a cap or lose content."""
    assert hosts.learn(hosts.PLAIN, "Unsupported parameter: 'max_tokens' is not supported with this model.") is None
    assert hosts.learn(hosts.PLAIN, "Unsupported parameter: 'tools' is not supported with this model.") is None
