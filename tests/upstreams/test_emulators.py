"""The emulators speak the real wire formats: the official SDKs, pointed straight at them, must work."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from upstreams import AnthropicUpstream, Fault, OpenAIUpstream, Reply, ToolCall, count_tokens

MESSAGES: list[Any] = [{"role": "user", "content": "What's the weather in Paris and Rome?"}]
CALLS = [
    ToolCall("call_a", "get_weather", {"city": "Paris", "unit": "celsius"}),
    ToolCall("call_b", "get_weather", '{"city": "Rome"}'),
]


def oai(server: OpenAIUpstream, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url, api_key=server.expected_key, max_retries=0, **options)


def ant(server: AnthropicUpstream, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.url, api_key=server.expected_key, max_retries=0, **options)


@dataclass
class Assembled:
    text: str = ""
    reasoning: str = ""
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finishes: list[str] = field(default_factory=list)
    usage: Any = None
    ids: set[str] = field(default_factory=set)


async def assemble(stream: Any) -> Assembled:
    """Accumulate an OpenAI chunk stream the way client code does, checking the §3.4 invariants."""
    out = Assembled()
    async for chunk in stream:
        out.ids.add(chunk.id)
        if chunk.usage is not None:
            out.usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            out.text += delta.content or ""
            out.reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
            for tc in delta.tool_calls or []:
                slot = out.calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                if tc.id:
                    assert not slot["id"], "tool call id repeated"
                    slot["id"] = tc.id
                if tc.function is not None:
                    slot["name"] += tc.function.name or ""
                    slot["arguments"] += tc.function.arguments or ""
            if choice.finish_reason is not None:
                out.finishes.append(choice.finish_reason)
    return out


# ----- OpenAI --------------------------------------------------------------------------------------


async def test_openai_non_stream_text(openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Reply(text="Hello there!", input_tokens=10, output_tokens=3, cache_read=4))
    async with oai(openai_upstream) as client:
        result = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert result.id.startswith("chatcmpl-") and result.object == "chat.completion"
    assert result.model == "gpt-4o-mini" and result.system_fingerprint
    choice = result.choices[0]
    assert choice.message.content == "Hello there!" and choice.message.tool_calls is None
    assert choice.finish_reason == "stop" and choice.message.refusal is None
    usage = result.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (14, 3, 17)
    assert usage.prompt_tokens_details.cached_tokens == 4
    assert usage.completion_tokens_details.reasoning_tokens == 0

    [rec] = openai_upstream.requests
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.header("Authorization") == f"Bearer {openai_upstream.expected_key}"
    assert rec.body["messages"] == MESSAGES and rec.model == "gpt-4o-mini" and not rec.stream
    assert rec.completed and not rec.disconnected and isinstance(rec.item, Reply)


async def test_openai_non_stream_tool_calls_and_reasoning(openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Reply(text=None, tool_calls=CALLS, thinking="Two cities.", reasoning_tokens=5))
    async with oai(openai_upstream) as client:
        result = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    message = result.choices[0].message
    assert message.content is None and result.choices[0].finish_reason == "tool_calls"
    assert (message.model_extra or {})["reasoning_content"] == "Two cities."
    calls = message.tool_calls or []
    assert [(c.id, c.type, c.function.name) for c in calls] == [  # type: ignore[union-attr]
        ("call_a", "function", "get_weather"),
        ("call_b", "function", "get_weather"),
    ]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris", "unit": "celsius"}  # type: ignore[union-attr]
    assert result.usage and result.usage.completion_tokens_details
    assert result.usage.completion_tokens_details.reasoning_tokens == 5


async def test_openai_stream_text_with_usage(openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Reply(text="Hello streaming world", input_tokens=20, output_tokens=4, cache_read=6))
    async with oai(openai_upstream) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        got = await assemble(stream)
    assert got.text == "Hello streaming world" and got.finishes == ["stop"] and len(got.ids) == 1
    assert got.usage.prompt_tokens == 26 and got.usage.completion_tokens == 4
    assert got.usage.prompt_tokens_details.cached_tokens == 6
    assert openai_upstream.requests[0].stream and openai_upstream.requests[0].completed


async def test_openai_stream_parallel_tool_calls(openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Reply(text="Checking.", tool_calls=CALLS, thinking="hmm", args_chunk=4))
    async with oai(openai_upstream) as client:
        stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        got = await assemble(stream)
    assert got.text == "Checking." and got.reasoning == "hmm" and got.finishes == ["tool_calls"]
    assert got.usage is None  # no include_usage: plain OpenAI sends none
    assert [got.calls[i]["id"] for i in (0, 1)] == ["call_a", "call_b"]
    assert {i: json.loads(c["arguments"]) for i, c in got.calls.items()} == {
        0: {"city": "Paris", "unit": "celsius"},
        1: {"city": "Rome"},
    }
    assert openai_upstream.requests[0].chunks_sent > 10


async def test_openai_models_and_defaults(openai_upstream: OpenAIUpstream) -> None:
    async with oai(openai_upstream) as client:
        models = await client.models.list()
        first = await client.chat.completions.create(model="x", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError):
            await client.moderations.create(input="y")  # a path the emulator does not serve
    assert [m.id for m in models.data] == ["gpt-4o-mini", "gpt-4o"]
    assert openai_upstream.requests[-1].path == "/v1/moderations"
    assert first.choices[0].message.content == "Hello!"  # empty script: default Reply()
    assert openai_upstream.requests[0].item is None and openai_upstream.requests[1].item == Reply()


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        (Fault(status=500), openai.InternalServerError),
        (Fault(status=503), openai.InternalServerError),
        (
            Fault(status=400, body={"error": {"message": "context too long", "type": "x"}}),
            openai.BadRequestError,
        ),
    ],
)
async def test_openai_error_statuses(openai_upstream: OpenAIUpstream, fault: Fault, exc: type[Exception]) -> None:
    openai_upstream.script(fault)
    async with oai(openai_upstream) as client:
        with pytest.raises(exc):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)


async def test_openai_rate_limit_and_auth(openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Fault(status=429, headers={"retry-after": "7"}))
    async with oai(openai_upstream) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"
    async with openai.AsyncOpenAI(base_url=openai_upstream.url, api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as denied:
            await bad.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert denied.value.code == "invalid_api_key"
    assert openai_upstream.pending == 0  # the 401 did not consume a scripted item


async def test_openai_stream_faults(openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Fault(cut_after_chunks=3), Fault(stream_error_after=2), Fault(reset=True))
    async with oai(openai_upstream) as client:
        with pytest.raises(openai.APIConnectionError):
            await assemble(await client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
        with pytest.raises(openai.APIError, match="mid-stream"):
            await assemble(await client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(model="m", messages=MESSAGES)
    cut, errored, reset = openai_upstream.requests
    assert cut.chunks_sent == 3 and cut.aborted and not cut.completed
    assert errored.chunks_sent == 3 and not errored.completed
    assert reset.aborted and reset.chunks_sent == 0


async def test_openai_client_timeout_is_recorded_as_disconnect(openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Fault(delay_first_byte=3.0), Fault(hang=True))
    async with oai(openai_upstream, timeout=0.3) as client:
        for _ in range(2):
            with pytest.raises(openai.APITimeoutError):
                await client.chat.completions.create(model="m", messages=MESSAGES)
    for rec in openai_upstream.requests:
        await rec.wait_done(2.0)
        assert rec.disconnected and rec.disconnected_at is not None and not rec.completed
        assert rec.disconnected_at - rec.received_at < 1.5


# ----- Anthropic -----------------------------------------------------------------------------------

THINKING_TOOLS = Reply(
    text="Let me check.",
    thinking="The user wants two cities.",
    signature="sig-123",
    tool_calls=[
        ToolCall("toolu_a", "get_weather", {"city": "Paris"}),
        ToolCall("toolu_b", "get_weather", {}),
    ],
    input_tokens=12,
    output_tokens=57,
    cache_read=4409,
    cache_write=100,
)


async def test_anthropic_non_stream(anthropic_upstream: AnthropicUpstream) -> None:
    anthropic_upstream.script(THINKING_TOOLS)
    async with ant(anthropic_upstream) as client:
        message = await client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES)
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-4-6" and message.stop_reason == "tool_use"
    thinking, text, first, second = message.content
    assert thinking.type == "thinking" and (thinking.thinking, thinking.signature) == (
        "The user wants two cities.",
        "sig-123",
    )
    assert text.type == "text" and text.text == "Let me check."
    assert first.type == "tool_use" and (first.id, first.name, first.input) == (
        "toolu_a",
        "get_weather",
        {"city": "Paris"},
    )
    assert second.type == "tool_use" and second.input == {}
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (12, 57)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (4409, 100)
    [rec] = anthropic_upstream.requests
    assert rec.api_key == anthropic_upstream.expected_key and rec.header("anthropic-version")


async def test_anthropic_stream_matches_non_stream(anthropic_upstream: AnthropicUpstream) -> None:
    anthropic_upstream.script(THINKING_TOOLS, THINKING_TOOLS)
    async with ant(anthropic_upstream) as client:
        whole = await client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES)
        async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES) as s:
            final = await s.get_final_message()
    assert [b.model_dump() for b in final.content] == [b.model_dump() for b in whole.content]
    assert final.stop_reason == "tool_use" and final.stop_sequence is None
    assert final.usage.input_tokens == 12 and final.usage.output_tokens == 57
    assert final.usage.cache_read_input_tokens == 4409
    assert anthropic_upstream.requests[1].stream and anthropic_upstream.requests[1].completed


async def test_anthropic_stream_text_and_stop_sequence(anthropic_upstream: AnthropicUpstream) -> None:
    anthropic_upstream.script(Reply(text="Hello world, bye", stop="stop_sequence", stop_sequence="END"))
    async with ant(anthropic_upstream) as client:
        async with client.messages.stream(model="claude-haiku", max_tokens=10, messages=MESSAGES) as s:
            texts = [t async for t in s.text_stream]
            final = await s.get_final_message()
    assert "".join(texts) == "Hello world, bye" and len(texts) == 6
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "END")


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        (Fault(status=529), anthropic.OverloadedError),
        (Fault(status=500), anthropic.InternalServerError),
        (Fault(status=400), anthropic.BadRequestError),
        (Fault(status=429, headers={"retry-after": "7"}), anthropic.RateLimitError),
    ],
)
async def test_anthropic_error_statuses(
    anthropic_upstream: AnthropicUpstream, fault: Fault, exc: type[anthropic.APIStatusError]
) -> None:
    anthropic_upstream.script(fault)
    async with ant(anthropic_upstream) as client:
        with pytest.raises(exc) as caught:
            await client.messages.create(model="claude", max_tokens=10, messages=MESSAGES)
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"]
    assert caught.value.response.headers.get("retry-after") == fault.headers.get("retry-after")


async def test_anthropic_auth_and_validation(anthropic_upstream: AnthropicUpstream) -> None:
    async with anthropic.AsyncAnthropic(base_url=anthropic_upstream.url, api_key="bad", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError):
            await bad.messages.create(model="claude", max_tokens=10, messages=MESSAGES)
    dangling = [
        *MESSAGES,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_x", "name": "f", "input": {}}]},
    ]
    async with ant(anthropic_upstream) as client:
        with pytest.raises(anthropic.BadRequestError, match="toolu_x"):
            await client.messages.create(model="claude", max_tokens=10, messages=dangling)
    assert anthropic_upstream.pending == 0


async def test_anthropic_stream_faults(anthropic_upstream: AnthropicUpstream) -> None:
    anthropic_upstream.script(Fault(stream_error_after=1), Fault(cut_after_chunks=4))
    async with ant(anthropic_upstream) as client:
        with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
            async with client.messages.stream(model="claude", max_tokens=10, messages=MESSAGES) as s:
                await s.get_final_message()
        # the Anthropic SDK surfaces a mid-body cut as the transport error itself
        with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
            async with client.messages.stream(model="claude", max_tokens=10, messages=MESSAGES) as s:
                await s.get_final_message()
    errored, cut = anthropic_upstream.requests
    assert errored.chunks_sent == 2 and cut.chunks_sent == 4 and cut.aborted


async def test_anthropic_count_tokens(anthropic_upstream: AnthropicUpstream) -> None:
    tools: list[Any] = [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}]
    async with ant(anthropic_upstream) as client:
        counted = await client.messages.count_tokens(model="claude", messages=MESSAGES, system="Be brief.", tools=tools)
    body = anthropic_upstream.requests[0].body
    assert anthropic_upstream.requests[0].path == "/v1/messages/count_tokens"
    assert counted.input_tokens == count_tokens(body) > count_tokens({"messages": MESSAGES})
    assert anthropic_upstream.pending == 0 and anthropic_upstream.requests[0].item is None
