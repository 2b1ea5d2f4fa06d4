"""Converse's own input rules at the wire (botocore's bedrock-runtime model and the API reference):
the emulator refuses what Converse refuses, and the adapter's bodies pass it.

- DocumentBlock.name: letters, digits, hyphens, parentheses, square brackets, no two whitespace
  characters in a row;
- a conversation starts with a user message;
- InferenceConfiguration.stopSequences: a list of non-empty strings;
- CachePointBlock: `type: default` and an optional `ttl` of "5m" or "1h"; TokenUsage.cacheDetails
  splits the cache writes by TTL;
- ToolUseId: at most 64 of [a-zA-Z0-9_.:-]; ToolName: at most 64 of [a-zA-Z0-9_-];
  InferenceConfiguration: maxTokens >= 1, temperature and topP in [0, 1];
- CountTokens: a foundation model, not an inference profile;
- ResourceNotFoundException (404): the endpoint's model id, so another endpoint is tried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import aclosing
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest
import pytest_asyncio
from upstreams import Fault, Reply
from upstreams.bedrock_server import API_KEY, BedrockUpstream

from keeprouter.config import EndpointConfig, Pricing, ProviderConfig, Timeouts
from keeprouter.errors import InvalidRequest, UpstreamError
from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    Message,
    StreamEvent,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    UsageUpdate,
)
from keeprouter.providers.base import CountNotSupported
from keeprouter.providers.bedrock import BedrockAdapter
from keeprouter.providers.bedrock.adapter import counted_model
from keeprouter.providers.bedrock.request import OPENING, build_request, document_name, use_id
from keeprouter.providers.bedrock.response import parse_usage

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
TIMEOUTS = Timeouts(connect=2, first_byte=2, idle=2)
EP = EndpointConfig(
    provider="bd",
    model=MODEL,
    pricing=Pricing(input=Decimal(1), output=Decimal(1)),
    capabilities=frozenset({"streaming"}),
    context_length=100_000,
    max_output_tokens=None,
    timeout=TIMEOUTS,
)
HI: dict[str, Any] = {"role": "user", "content": [{"text": "Hi"}]}


@pytest_asyncio.fixture
async def adapter(bedrock_upstream: BedrockUpstream) -> AsyncIterator[BedrockAdapter]:
    a = BedrockAdapter(ProviderConfig("bd", "bedrock", bedrock_upstream.url, API_KEY, TIMEOUTS))
    yield a
    await a.close()


async def post_to(upstream: BedrockUpstream, path: str, body: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """A call straight to the emulator: (status, error type, JSON body)."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{upstream.url}{path.replace(':', '%3A')}", json=body, headers=headers) as r,
    ):
        return r.status, r.headers.get("x-amzn-errortype", ""), await r.json()


async def post(upstream: BedrockUpstream, body: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """A Converse call straight to the emulator."""
    return await post_to(upstream, f"/model/{MODEL}/converse", body)


def doc(name: str) -> dict[str, Any]:
    return {"document": {"format": "pdf", "name": name, "source": {"bytes": "JVBERi0="}}}


# ----- the emulator refuses what Converse refuses -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"messages": [{"role": "user", "content": [doc("Q3  report")]}]}, "document file name"),
        ({"messages": [{"role": "user", "content": [doc("report.pdf")]}]}, "document file name"),
        ({"messages": [{"role": "assistant", "content": [{"text": "Hello"}]}, HI]}, "must start with a user"),
        ({"messages": [HI], "inferenceConfig": {"stopSequences": ["END", ""]}}, "stopSequences.1"),
        ({"messages": [HI], "system": [{"text": "x"}, {"cachePoint": {"type": "default", "ttl": "2h"}}]}, "ttl"),
        ({"messages": [HI], "system": [{"text": "x"}, {"cachePoint": {"type": "ephemeral"}}]}, "type"),
        ({"messages": [HI], "inferenceConfig": {"temperature": 1.5}}, "inferenceConfig.temperature"),
        ({"messages": [HI], "inferenceConfig": {"maxTokens": 0}}, "inferenceConfig.maxTokens"),
        (
            {
                "messages": [HI],
                "toolConfig": {"tools": [{"toolSpec": {"name": "web.search", "inputSchema": {"json": {}}}}]},
            },
            "toolSpec.name",
        ),
    ],
)
async def test_the_emulator_refuses_what_converse_refuses(
    bedrock_upstream: BedrockUpstream, body: dict[str, Any], says: str
) -> None:
    status, kind, answer = await post(bedrock_upstream, body)
    assert status == 400 and kind.startswith("ValidationException")
    assert says in answer["message"]


async def test_the_emulator_takes_what_converse_takes(bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Reply(text="ok"))
    body = {
        "messages": [{"role": "user", "content": [doc("Q3 report (final) [v2]"), {"text": "Sum up"}]}],
        "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default", "ttl": "1h"}}],
    }
    status, _, answer = await post(bedrock_upstream, body)
    assert status == 200 and answer["output"]["message"]["content"] == [{"text": "ok"}]


# ----- the translator writes what Converse takes --------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Q3  report (final) [v2]", "Q3 report (final) [v2]"),
        ("quarterly_report.v2", "quarterly report v2"),
        ("  tab\there\n", "tab here"),
        ("***", "document"),
        ("a" * 250, "a" * 200),
    ],
)
def test_document_names_are_made_acceptable(raw: str, name: str) -> None:
    assert document_name(raw) == name


async def test_a_pdf_with_an_awkward_filename_is_taken(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream
) -> None:
    bedrock_upstream.script(Reply(text="A summary."))
    pdf = DocumentPart(data="JVBERi0=", media_type="application/pdf", filename="Q3  report (final) [v2].pdf")
    req = ChatRequest(model="x", messages=[Message(role="user", content=[pdf, TextPart(text="Sum up")])])
    answer = await adapter.complete(req, EP, {})
    assert answer.content[0].text == "A summary."  # type: ignore[union-attr]
    sent = bedrock_upstream.requests[-1].body["messages"][0]["content"][0]["document"]
    assert sent["name"] == "Q3 report (final) [v2]"


async def test_a_conversation_opened_by_the_assistant_is_taken(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream
) -> None:
    bedrock_upstream.script(Reply(text="Sure."))
    req = ChatRequest(
        model="x",
        messages=[
            Message(role="assistant", content=[TextPart(text="Hello! How can I help?")]),
            Message(role="user", content=[TextPart(text="Tell me a joke")]),
        ],
    )
    await adapter.complete(req, EP, {})
    turns = bedrock_upstream.requests[-1].body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == [{"text": OPENING}]


async def test_empty_stop_sequences_are_left_out(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Reply(text="ok"), Reply(text="ok"))
    base = ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="Hi")])])
    await adapter.complete(msgspec.structs.replace(base, stop=["", "END"]), EP, {})
    sent = bedrock_upstream.requests[-1].body
    assert sent["inferenceConfig"]["stopSequences"] == ["END"]
    await adapter.complete(msgspec.structs.replace(base, stop=[""]), EP, {})
    sent = bedrock_upstream.requests[-1].body
    assert "stopSequences" not in sent.get("inferenceConfig", {})
    assert "additionalModelResponseFieldPaths" not in sent


def test_a_one_hour_breakpoint_keeps_its_ttl() -> None:
    req = ChatRequest(
        model="x",
        system=[TextPart(text="a long manual", cache_control={"type": "ephemeral", "ttl": "1h"})],
        messages=[Message(role="user", content=[TextPart(text="Hi", cache_control={"type": "ephemeral"})])],
    )
    b = build_request(req, MODEL, default_max_tokens=100)
    assert b["system"] == [{"text": "a long manual"}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
    assert b["messages"][0]["content"] == [{"text": "Hi"}, {"cachePoint": {"type": "default"}}]


def test_cache_details_give_the_one_hour_writes() -> None:
    u = parse_usage(
        {
            "inputTokens": 10,
            "outputTokens": 5,
            "totalTokens": 1515,
            "cacheReadInputTokens": 0,
            "cacheWriteInputTokens": 1500,
            "cacheDetails": [{"ttl": "5m", "inputTokens": 500}, {"ttl": "1h", "inputTokens": 1000}],
        }
    )
    assert (u.input_tokens, u.cache_write_tokens, u.cache_write_1h_tokens) == (1510, 1500, 1000)
    assert parse_usage({"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}).cache_write_1h_tokens == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_one_hour_writes_reach_the_usage(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream, stream: bool
) -> None:
    bedrock_upstream.script(Reply(text="ok", input_tokens=10, cache_write=1500, cache_write_1h=1000))
    req = ChatRequest(
        model="x",
        system=[TextPart(text="a long manual", cache_control={"type": "ephemeral", "ttl": "1h"})],
        messages=[Message(role="user", content=[TextPart(text="Hi")])],
        stream=stream,
    )
    if stream:
        async with aclosing(adapter.stream(req, EP, {})) as s:
            events: list[StreamEvent] = [ev async for ev in s]
        usage = [e.usage for e in events if isinstance(e, UsageUpdate)][-1]
    else:
        usage = (await adapter.complete(req, EP, {})).usage
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens) == (1500, 1000)
    assert bedrock_upstream.requests[-1].body["system"][1] == {"cachePoint": {"type": "default", "ttl": "1h"}}


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unknown_model_id_is_the_routers_problem(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream, stream: bool
) -> None:
    """ResourceNotFoundException (404) names the endpoint's configured model id, never the caller's
    model: retryable, so another endpoint serves the request, as a 404 from any other kind."""
    message = "The provided model identifier is invalid."
    bedrock_upstream.script(Fault(status=404, body={"message": message}))
    req = ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="Hi")])], stream=stream)
    with pytest.raises(UpstreamError) as e:
        if stream:
            async with aclosing(adapter.stream(req, EP, {})) as s:
                [ev async for ev in s]
        else:
            await adapter.complete(req, EP, {})
    assert e.value.status == 502 and e.value.retryable and message in e.value.message


def test_long_tool_call_ids_are_shortened_alike() -> None:
    long = "call_" + "x" * 95
    assert use_id("toolu_01ABC") == "toolu_01ABC"
    assert use_id("functions.get_weather:0") == "functions_get_weather_0"  # as for Anthropic
    short = use_id(long)
    assert len(short) <= 64 and short == use_id(long) and short != use_id(long + "y")


async def test_a_tool_loop_with_a_long_call_id_is_taken(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream
) -> None:
    long = "call_" + "x" * 95  # another provider's id, longer than ToolUseId's 64
    status, _, answer = await post(
        bedrock_upstream,
        {
            "messages": [
                HI,
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": long, "name": "f", "input": {}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": long, "content": [{"text": "1"}]}}]},
            ],
            "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]},
        },
    )
    assert status == 400 and "toolUseId" in answer["message"]
    bedrock_upstream.script(Reply(text="Done."))
    req = ChatRequest(
        model="x",
        tools=[Tool(name="f", parameters={"type": "object"})],
        messages=[
            Message(role="user", content=[TextPart(text="Hi")]),
            Message(role="assistant", content=[ToolCallPart(id=long, name="f", arguments="{}")]),
            Message(role="user", content=[ToolResultPart(tool_call_id=long, content=[TextPart(text="1")])]),
        ],
    )
    assert (await adapter.complete(req, EP, {})).content[0].text == "Done."  # type: ignore[union-attr]
    turns = bedrock_upstream.requests[-1].body["messages"]
    sent_use = turns[1]["content"][0]["toolUse"]["toolUseId"]
    assert sent_use == turns[2]["content"][0]["toolResult"]["toolUseId"] and len(sent_use) <= 64


async def test_count_tokens_names_the_foundation_model(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream
) -> None:
    """CountTokens refuses inference profiles ("The provided model doesn't support counting
    tokens"): a cross-region profile is counted as its foundation model, a profile ARN not at all."""
    req = ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="Hi")])])
    status, kind, answer = await post_to(bedrock_upstream, f"/model/{MODEL}/count-tokens", {"input": {"converse": {}}})
    assert status == 400 and kind.startswith("ValidationException") and "counting tokens" in answer["message"]
    assert await adapter.count_tokens(req, EP, {}) > 0
    assert bedrock_upstream.requests[-1].path == "/model/anthropic.claude-haiku-4-5-20251001-v1:0/count-tokens"
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    before = len(bedrock_upstream.requests)
    with pytest.raises(CountNotSupported):
        await adapter.count_tokens(req, dataclasses.replace(EP, model=arn), {})
    assert len(bedrock_upstream.requests) == before  # not asked


@pytest.mark.parametrize(
    ("model", "counted"),
    [
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("us-gov.anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        ),
        ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x-v1:0", None),
    ],
)
def test_counted_model(model: str, counted: str | None) -> None:
    assert counted_model(model) == counted


@pytest.mark.parametrize(
    ("media_type", "filename", "fmt", "name"),
    [
        ("application/pdf", "Q3 report.PDF", "pdf", "Q3 report"),
        ("text/csv", "sales.csv", "csv", "sales"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "memo.docx", "docx", "memo"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "q3.xlsx", "xlsx", "q3"),
        ("text/markdown; charset=utf-8", "README.md", "md", "README"),
        ("text/plain", "notes.markdown", "txt", "notes markdown"),
    ],
)
async def test_documents_of_every_converse_format_are_taken(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream, media_type: str, filename: str, fmt: str, name: str
) -> None:
    """Converse reads pdf, csv, doc, docx, xls, xlsx, html, txt and md documents (DocumentFormat)."""
    bedrock_upstream.script(Reply(text="Read."))
    part = DocumentPart(data="SGVsbG8=", media_type=media_type, filename=filename)
    req = ChatRequest(model="x", messages=[Message(role="user", content=[part, TextPart(text="Sum up")])])
    assert (await adapter.complete(req, EP, {})).content[0].text == "Read."  # type: ignore[union-attr]
    sent = bedrock_upstream.requests[-1].body["messages"][0]["content"][0]["document"]
    assert (sent["format"], sent["name"], sent["source"]) == (fmt, name, {"bytes": "SGVsbG8="})


def test_a_document_converse_cannot_read_is_refused_naming_it() -> None:
    part = DocumentPart(data="AAAA", media_type="application/zip", filename="a.zip", where="messages[0].content[0]")
    req = ChatRequest(model="x", messages=[Message(role="user", content=[part])])
    with pytest.raises(InvalidRequest) as e:
        build_request(req, MODEL, default_max_tokens=10)
    assert e.value.param == "messages[0].content[0]"


@pytest.mark.parametrize(
    ("model", "ttl"),
    [
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "1h"),
        ("anthropic.claude-opus-4-6-v1", "1h"),
        ("anthropic.claude-sonnet-4-20250514-v1:0", None),  # 4.0: five minutes only
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", None),
        ("amazon.nova-pro-v1:0", None),
    ],
)
async def test_one_hour_cache_points_only_where_the_model_takes_them(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream, model: str, ttl: str | None
) -> None:
    """One-hour cache points are Claude 4.5 and later's: elsewhere the breakpoint stays a five-minute
    one (the emulator, as Bedrock, refuses a 1h ttl there)."""
    bedrock_upstream.script(Reply(text="ok"))
    req = ChatRequest(
        model="x",
        system=[TextPart(text="a long manual", cache_control={"type": "ephemeral", "ttl": "1h"})],
        messages=[Message(role="user", content=[TextPart(text="Hi")])],
    )
    await adapter.complete(req, dataclasses.replace(EP, model=model), {})
    point = bedrock_upstream.requests[-1].body["system"][1]["cachePoint"]
    assert point.get("ttl") == ttl and point["type"] == "default"
    status, kind, answer = await post_to(
        bedrock_upstream,
        f"/model/{model}/converse",
        {"messages": [HI], "system": [{"text": "x"}, {"cachePoint": {"type": "default", "ttl": "1h"}}]},
    )
    if ttl is None:
        assert status == 400 and kind.startswith("ValidationException") and "ttl" in answer["message"]
