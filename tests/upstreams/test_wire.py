"""Byte-level checks of the emulators: exact stream shapes (wire-formats §3.4/§3.5), quirks and faults."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from upstreams import AnthropicUpstream, Fault, OpenAIUpstream, Reply, ToolCall

USER: list[Any] = [{"role": "user", "content": "hi"}]
TOOLS = Reply(text="Let me check.", tool_calls=[ToolCall(None, "f", {"a": 1}), ToolCall(None, "g", {"b": "xyz"})])


def oai_headers(server: OpenAIUpstream) -> dict[str, str]:
    return {"authorization": f"Bearer {server.expected_key}"}


def ant_headers(server: AnthropicUpstream) -> dict[str, str]:
    return {"x-api-key": server.expected_key or "", "anthropic-version": "2023-06-01"}


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        events.append((name, "\n".join(data)))
    return events


async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.text()


async def openai_chunks(server: OpenAIUpstream, **body: Any) -> list[dict[str, Any]]:
    request = {"model": "gpt-4o", "messages": USER, "stream": True, **body}
    status, text = await post(f"{server.url}/chat/completions", request, oai_headers(server))
    assert status == 200
    events = parse_sse(text)
    assert events[-1] == (None, "[DONE]")
    return [json.loads(data) for _, data in events[:-1]]


async def test_openai_stream_invariants(openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(TOOLS)
    chunks = await openai_chunks(openai_upstream, stream_options={"include_usage": True})
    assert len({(c["id"], c["created"], c["model"], c["object"]) for c in chunks}) == 1
    assert chunks[0]["object"] == "chat.completion.chunk" and chunks[0]["model"] == "gpt-4o"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert all(c["usage"] is None for c in chunks[:-1])
    *body, usage = chunks
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 19
    finishes = [c["choices"][0]["finish_reason"] for c in body if c["choices"][0]["finish_reason"]]
    assert finishes == ["tool_calls"] and body[-1]["choices"][0]["delta"] == {}
    fragments = [tc for c in body for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    firsts = [f for f in fragments if "id" in f]
    assert [f["index"] for f in firsts] == [0, 1]
    assert all(f["id"].startswith("call_") and f["type"] == "function" for f in firsts)
    assert [f["function"] for f in firsts] == [{"name": "f", "arguments": ""}, {"name": "g", "arguments": ""}]
    rest = [f for f in fragments if "id" not in f]
    assert all(set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in rest)
    args = {i: "".join(f["function"]["arguments"] for f in rest if f["index"] == i) for i in (0, 1)}
    assert {i: json.loads(a) for i, a in args.items()} == {0: {"a": 1}, 1: {"b": "xyz"}}


async def test_openai_no_usage_key_without_include_usage(openai_upstream: OpenAIUpstream) -> None:
    chunks = await openai_chunks(openai_upstream)
    assert all("usage" not in c for c in chunks) and all(c["choices"] for c in chunks)


async def test_openai_quirks() -> None:
    quirky = OpenAIUpstream(
        prefix="/api/v1",
        reasoning_field="reasoning",
        usage_in_last_choice_chunk=True,
        repeat_tool_id=True,
        empty_tool_calls_list=True,
    )
    async with quirky:
        assert quirky.url.endswith("/api/v1")
        quirky.script(Reply(text="abcdef", thinking="think", tool_calls=[ToolCall("call_1", "f", "{}")]))
        chunks = await openai_chunks(quirky, stream_options={"include_usage": True})
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("reasoning", "") for d in deltas) == "think"
    assert [d["tool_calls"] for d in deltas if d.get("content")] == [[], []]
    fragments = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert len(fragments) == 2 and all(f["id"] == "call_1" for f in fragments)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls" and chunks[-1]["usage"]["prompt_tokens"] == 12
    async with OpenAIUpstream(no_usage=True) as bare:
        chunks = await openai_chunks(bare, stream_options={"include_usage": True})
        status, text = await post(f"{bare.url}/chat/completions", {"model": "m", "messages": USER}, oai_headers(bare))
    assert all("usage" not in c for c in chunks) and status == 200 and "usage" not in json.loads(text)


async def test_openai_validation_and_auth(openai_upstream: OpenAIUpstream) -> None:
    dangling = [*USER, {"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function"}]}]
    url = f"{openai_upstream.url}/chat/completions"
    status, text = await post(url, {"model": "m", "messages": dangling}, oai_headers(openai_upstream))
    assert status == 400 and "call_9" in json.loads(text)["error"]["message"]
    status, text = await post(url, {"messages": USER}, oai_headers(openai_upstream))
    assert status == 400 and json.loads(text)["error"]["param"] == "model"
    status, text = await post(url, {"model": "m", "messages": USER}, {})
    assert status == 401 and json.loads(text)["error"]["type"] == "invalid_request_error"


async def test_anthropic_stream_event_sequence(anthropic_upstream: AnthropicUpstream) -> None:
    anthropic_upstream.script(Reply(text="Hi!", thinking="hmm", tool_calls=[ToolCall(None, "f", {"a": 1})]))
    body = {"model": "claude", "max_tokens": 5, "messages": USER, "stream": True}
    status, text = await post(f"{anthropic_upstream.url}/v1/messages", body, ant_headers(anthropic_upstream))
    assert status == 200
    events = [(name, json.loads(data)) for name, data in parse_sse(text)]
    assert all(name == data["type"] for name, data in events)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        *["content_block_start", "ping", "content_block_delta", "content_block_delta", "content_block_stop"],
        *["content_block_start", "content_block_delta", "content_block_stop"],
        *["content_block_start", *["content_block_delta"] * 2, "content_block_stop"],
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["output_tokens"] == 1
    blocks = [d for n, d in events if n == "content_block_start"]
    assert [b["index"] for b in blocks] == [0, 1, 2]
    assert [b["content_block"]["type"] for b in blocks] == ["thinking", "text", "tool_use"]
    assert blocks[2]["content_block"]["id"].startswith("toolu_") and blocks[2]["content_block"]["input"] == {}
    deltas = [(d["index"], d["delta"]["type"]) for n, d in events if n == "content_block_delta"]
    assert deltas == [
        (0, "thinking_delta"),
        (0, "signature_delta"),
        (1, "text_delta"),
        (2, "input_json_delta"),
        (2, "input_json_delta"),
    ]
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 7},
    }


async def test_anthropic_headers_required(anthropic_upstream: AnthropicUpstream) -> None:
    url = f"{anthropic_upstream.url}/v1/messages"
    body = {"model": "claude", "max_tokens": 5, "messages": USER}
    status, text = await post(url, body, {"x-api-key": anthropic_upstream.expected_key or ""})
    assert status == 400 and "anthropic-version" in json.loads(text)["error"]["message"]
    status, text = await post(url, body, {"anthropic-version": "2023-06-01"})
    assert status == 401 and json.loads(text)["error"]["type"] == "authentication_error"
    status, text = await post(url, {"model": "claude", "messages": USER}, ant_headers(anthropic_upstream))
    assert status == 400 and "max_tokens" in json.loads(text)["error"]["message"]


@pytest.mark.parametrize("kind", ["json", "sse"])
async def test_malformed(openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, kind: Any) -> None:
    openai_upstream.script(Fault(malformed=kind), Fault(malformed=kind, malformed_after=1))
    anthropic_upstream.script(Fault(malformed=kind, malformed_after=1))
    status, text = await post(
        f"{openai_upstream.url}/chat/completions",
        {"model": "m", "messages": USER},
        oai_headers(openai_upstream),
    )
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(text)
    body = {"model": "m", "max_tokens": 5, "messages": USER, "stream": True}
    _, text = await post(f"{openai_upstream.url}/chat/completions", body, oai_headers(openai_upstream))
    _, text2 = await post(f"{anthropic_upstream.url}/v1/messages", body, ant_headers(anthropic_upstream))
    for events in (parse_sse(text), parse_sse(text2)):
        assert len(events) == 2
        json.loads(events[0][1])
        with pytest.raises(ValueError):
            json.loads(events[1][1])


async def test_cut_clean_and_custom_error_body(openai_upstream: OpenAIUpstream) -> None:
    html = Fault(status=502, body="<html>Bad Gateway</html>", headers={"content-type": "text/html"})
    openai_upstream.script(Fault(cut_after_chunks=2, cut_clean=True), html)
    body = {"model": "m", "messages": USER, "stream": True}
    status, text = await post(f"{openai_upstream.url}/chat/completions", body, oai_headers(openai_upstream))
    assert status == 200 and len(parse_sse(text)) == 2 and "[DONE]" not in text
    status, text = await post(f"{openai_upstream.url}/chat/completions", body, oai_headers(openai_upstream))
    assert status == 502 and text == "<html>Bad Gateway</html>"


async def test_drip_and_client_disconnect_mid_stream(anthropic_upstream: AnthropicUpstream) -> None:
    anthropic_upstream.script(Fault(drip_interval=0.05, reply=Reply(text="x" * 60, chunk_size=1)))
    body = {"model": "claude", "max_tokens": 5, "messages": USER, "stream": True}
    async with aiohttp.ClientSession() as session:
        url = f"{anthropic_upstream.url}/v1/messages"
        async with session.post(url, json=body, headers=ant_headers(anthropic_upstream)) as resp:
            started = time.monotonic()
            await resp.content.readuntil(b"\n\n")
            await resp.content.readuntil(b"\n\n")
            assert time.monotonic() - started >= 0.03  # dripped
    [rec] = anthropic_upstream.requests
    await rec.wait_done(2.0)
    assert rec.disconnected and not rec.completed and rec.chunks_sent < 10
    assert rec.disconnected_at is not None and rec.disconnected_at - started < 1.0


async def test_close_is_prompt_with_hanging_requests() -> None:
    server = await OpenAIUpstream().start()
    server.script(Fault(hang=True))
    body = {"model": "m", "messages": USER}
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(
            session.post(f"{server.url}/chat/completions", json=body, headers=oai_headers(server))
        )
        await server.wait_for_requests(1)
        started = time.monotonic()
        await server.close()
        assert time.monotonic() - started < 2.0
        with pytest.raises(aiohttp.ClientError):
            await task
    assert server.requests[0].aborted and not server.requests[0].disconnected
