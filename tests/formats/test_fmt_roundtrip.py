"""Property tests: canonical values survive build -> parse in both formats, and streams survive
being decoded from one format and re-encoded in the other."""

from __future__ import annotations

import base64
from typing import Any, Literal

import msgspec
import orjson
from formats.fmt_helpers import check_anthropic_stream, check_openai_stream
from hypothesis import given, settings
from hypothesis import strategies as st

from keeprouter.clients.anthropic_messages import request as messages_req
from keeprouter.clients.anthropic_messages import response as messages_resp
from keeprouter.clients.anthropic_messages.stream import AnthropicStreamEncoder
from keeprouter.clients.openai_chat import request as chat_req
from keeprouter.clients.openai_chat import response as chat_resp
from keeprouter.clients.openai_chat.stream import OpenAIStreamEncoder
from keeprouter.formats.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
    Reasoning,
    StopReason,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from keeprouter.providers.anthropic import request as anthropic_req
from keeprouter.providers.anthropic import response as anthropic_resp
from keeprouter.providers.anthropic.stream import AnthropicStreamDecoder
from keeprouter.providers.openai import request as openai_req
from keeprouter.providers.openai import response as openai_resp
from keeprouter.providers.openai.stream import OpenAIStreamDecoder

text = st.text(min_size=1, max_size=30)
ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
json_obj = st.dictionaries(
    ident,
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | text
    | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
    max_size=4,
)
args = json_obj.map(lambda d: orjson.dumps(d).decode())
tool_id = ident.map(lambda s: "call_" + s)
schema = json_obj.map(lambda d: {"type": "object", "properties": {k: {"type": "string"} for k in d}})
usage = st.builds(
    lambda r, w, plain, out, reason: Usage(
        input_tokens=plain + r + w,
        output_tokens=out + reason,
        cache_read_tokens=r,
        cache_write_tokens=w,
        reasoning_tokens=reason,
    ),
    *[st.integers(0, 10**6)] * 5,
)


def unique_calls(draw: st.DrawFn, n: int) -> list[ToolCallPart]:
    ids = draw(st.lists(tool_id, min_size=n, max_size=n, unique=True))
    return [ToolCallPart(id=i, name=draw(ident), arguments=draw(args)) for i in ids]


@st.composite
def conversation(draw: st.DrawFn, *, anthropic: bool) -> list[Message]:
    msgs: list[Message] = []
    pending: list[str] = []  # tool ids the next user turn answers
    for turn in range(draw(st.integers(1, 6))):
        if turn % 2 == 0:
            content: list[Part] = [
                ToolResultPart(
                    tool_call_id=i,
                    is_error=anthropic and draw(st.booleans()),
                    content=[TextPart(text=draw(text))] if draw(st.booleans()) or not anthropic else [],
                )
                for i in pending
            ]
            if not content or draw(st.booleans()):
                content.append(TextPart(text=draw(text)))
                if draw(st.booleans()):
                    content.append(
                        ImagePart(media_type="image/png", data=base64.b64encode(draw(st.binary(min_size=1))).decode())
                        if draw(st.booleans())
                        else ImagePart(url="https://x/" + draw(ident))
                    )
            msgs.append(Message(role="user", content=content))
        else:
            content = []
            if anthropic and draw(st.booleans()):
                content.append(ThinkingPart(text=draw(text), signature=draw(ident), origin="anthropic"))
            calls = unique_calls(draw, draw(st.integers(0, 3)))
            if not calls or draw(st.booleans()):
                content.append(TextPart(text=draw(text)))
            content.extend(calls)
            pending = [c.id for c in calls]
            msgs.append(Message(role="assistant", content=content))
    return msgs


@st.composite
def tools_and_choice(draw: st.DrawFn, *, anthropic: bool) -> tuple[list[Tool], ToolChoice | None]:
    names = draw(st.lists(ident, max_size=3, unique=True))
    tools = [Tool(name=n, description=draw(st.none() | text), parameters=draw(schema)) for n in names]
    if not tools or draw(st.booleans()):
        return tools, None
    modes: list[Literal["auto", "none", "required", "tool"]] = ["auto", "none", "required", "tool"]
    mode = draw(st.sampled_from(modes))
    return tools, ToolChoice(
        mode=mode,
        name=names[0] if mode == "tool" else None,
        disable_parallel=mode != "none" and draw(st.booleans()),
    )


@st.composite
def openai_request(draw: st.DrawFn) -> ChatRequest:
    tools, choice = draw(tools_and_choice(anthropic=False))
    stream = draw(st.booleans())
    return ChatRequest(
        model="m",
        source="openai",
        messages=draw(conversation(anthropic=False)),
        system=[TextPart(text=draw(text))] if draw(st.booleans()) else [],
        tools=tools,
        tool_choice=choice,
        max_tokens=draw(st.none() | st.integers(1, 10**5)),
        temperature=draw(st.none() | st.floats(0, 2)),
        top_p=draw(st.none() | st.floats(0, 1)),
        top_k=draw(st.none() | st.integers(1, 100)),
        stop=draw(st.lists(text, max_size=2)),
        seed=draw(st.none() | st.integers(0, 99)),
        user=draw(st.none() | ident),
        reasoning=draw(st.none() | st.sampled_from(["low", "medium", "high"]).map(lambda e: Reasoning(effort=e))),
        response_format=draw(st.none() | st.just({"type": "json_object"})),
        stream=stream,
        include_usage=stream,
        extra=draw(st.sampled_from([{}, {"frequency_penalty": 0.5}])),
    )


@st.composite
def anthropic_request(draw: st.DrawFn) -> ChatRequest:
    tools, choice = draw(tools_and_choice(anthropic=True))
    max_tokens = draw(st.integers(1, 10**5))
    thinking = max_tokens > 2048 and draw(st.booleans())
    system = draw(
        st.lists(
            st.builds(TextPart, text=text, cache_control=st.none() | st.just({"type": "ephemeral"})),
            max_size=3,
        )
    )
    if len(system) == 1 and system[0].cache_control is None:
        pass  # sent as a plain string, parsed back as the same single part
    return ChatRequest(
        model="m",
        source="anthropic",
        messages=draw(conversation(anthropic=True)),
        system=system,
        tools=tools,
        tool_choice=choice,
        max_tokens=max_tokens,
        stop=draw(st.lists(text, max_size=2)),
        user=draw(st.none() | ident),
        temperature=None if thinking else draw(st.none() | st.floats(0, 1)),
        top_p=None if thinking else draw(st.none() | st.floats(0, 1)),
        top_k=None if thinking else draw(st.none() | st.integers(1, 100)),
        reasoning=Reasoning(budget_tokens=draw(st.integers(1024, max_tokens - 1))) if thinking else None,
        stream=draw(st.booleans()),
        extra=draw(st.sampled_from([{}, {"service_tier": "auto"}])),
    )


@settings(max_examples=200, deadline=None)
@given(req=openai_request())
def test_openai_request_survives_build_then_parse(req: ChatRequest) -> None:
    assert chat_req.parse_request(openai_req.build_request(req, "m")) == req


def prefill_trimmed(req: ChatRequest) -> ChatRequest:
    """`req` as Claude is sent it: a final assistant turn's last text loses its trailing whitespace,
    and the part (then the turn) goes when nothing is left (providers.anthropic.request.trim_prefill)."""
    last = req.messages[-1] if req.messages else None
    if last is None or last.role != "assistant" or not last.content:
        return req
    part = last.content[-1]
    if not isinstance(part, TextPart) or part.text == part.text.rstrip():
        return req
    content = last.content[:-1]
    if part.text.rstrip():
        content.append(msgspec.structs.replace(part, text=part.text.rstrip()))
    messages = req.messages[:-1] + ([msgspec.structs.replace(last, content=content)] if content else [])
    return msgspec.structs.replace(req, messages=messages)


@settings(max_examples=200, deadline=None)
@given(req=anthropic_request())
def test_anthropic_request_survives_build_then_parse(req: ChatRequest) -> None:
    body = anthropic_req.build_request(req, "m", default_max_tokens=1)
    req = prefill_trimmed(req)
    if req.reasoning is not None and req.reasoning.on and "thinking" not in body:
        # left off on purpose: a tool loop whose last assistant turn has no thinking, or no room
        req = msgspec.structs.replace(req, reasoning=None)
    assert messages_req.parse_request(body) == req


@st.composite
def response(draw: st.DrawFn, *, anthropic: bool) -> ChatResponse:
    content: list[Part] = []
    if draw(st.booleans()):
        content.append(
            ThinkingPart(
                text=draw(text),
                signature=draw(ident) if anthropic else None,
                origin="anthropic" if anthropic else None,
            )
        )
    if draw(st.booleans()):
        content.append(TextPart(text=draw(text)))
    calls = unique_calls(draw, draw(st.integers(0, 3)))
    content.extend(calls)
    reasons: list[StopReason] = ["tool_use"] if calls else ["end_turn", "max_tokens", "content_filter"]
    if anthropic and not calls:
        reasons.append("stop_sequence")
    stop = draw(st.sampled_from(reasons))
    return ChatResponse(
        id="r",
        model="m",
        content=content,
        stop_reason=stop,
        usage=draw(usage),
        stop_sequence=draw(text) if stop == "stop_sequence" else None,
    )


@settings(max_examples=200, deadline=None)
@given(resp=response(anthropic=False))
def test_openai_response_survives_build_then_parse(resp: ChatResponse) -> None:
    body = chat_resp.build_response(resp, id="r", model="m", created=1, provider=None, cost=None)
    assert openai_resp.parse_response(orjson.loads(orjson.dumps(body))) == resp


@settings(max_examples=200, deadline=None)
@given(resp=response(anthropic=True))
def test_anthropic_response_survives_build_then_parse(resp: ChatResponse) -> None:
    body = messages_resp.build_response(resp, id="r", model="m")
    assert anthropic_resp.parse_response(orjson.loads(orjson.dumps(body))) == resp


# ---- cross-format streams ------------------------------------------------------------------


def split(draw: st.DrawFn, s: str) -> list[str]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(s)), max_size=4))))
    pieces = [s[a:b] for a, b in zip([0, *cuts], [*cuts, len(s)], strict=True)]
    return [p for p in pieces if p] or [s]


@st.composite
def openai_upstream(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str, list[tuple[str, str, str]]]:
    """Upstream chunks with the quirks seen in the wild; returns (chunks, text, [(id, name, args)])."""
    calls = [(c.id, c.name, c.arguments) for c in unique_calls(draw, draw(st.integers(0, 3)))]
    texts = draw(st.lists(text, max_size=3))
    repeat_id = draw(st.booleans())  # the id repeated on every fragment
    empty_tool_calls = draw(st.booleans())  # vLLM
    usage_on_finish = draw(st.booleans())  # usage on a chunk that still has choices
    interleave = draw(st.booleans())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "up",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    for t in texts:
        chunks.append(chunk({"content": t, "tool_calls": []} if empty_tool_calls else {"content": t}))
    frags: list[tuple[int, str]] = [(i, p) for i, (_, _, a) in enumerate(calls) for p in split(draw, a)]
    for i, (cid, name, _) in enumerate(calls):
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": cid,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        if not interleave:
            for j, p in frags:
                if j == i:
                    frag: dict[str, Any] = {"index": i, "function": {"arguments": p}}
                    if repeat_id:
                        frag["id"] = cid
                    chunks.append(chunk({"tool_calls": [frag]}))
    if interleave:
        # keep each call's own fragment order, interleave calls round-robin
        queues = [[p for j, p in frags if j == i] for i in range(len(calls))]
        while any(queues):
            for i, q in enumerate(queues):
                if q:
                    chunks.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": q.pop(0)}}]}))
    finish = chunk({}, "tool_calls" if calls else "stop")
    u = {
        "prompt_tokens": 50,
        "completion_tokens": 7,
        "total_tokens": 57,
        "prompt_tokens_details": {"cached_tokens": 20},
    }
    if usage_on_finish:
        finish["usage"] = u
        chunks.append(finish)
    else:
        chunks += [finish, chunk({}, "stop"), {**chunk({}), "choices": [], "usage": u}]
    return chunks, "".join(texts), calls


@settings(max_examples=200, deadline=None)
@given(up=openai_upstream())
def test_openai_upstream_to_anthropic_client_keeps_tool_inputs(
    up: tuple[list[dict[str, Any]], str, list[Any]],
) -> None:
    chunks, full_text, calls = up
    dec = OpenAIStreamDecoder()
    enc = AnthropicStreamEncoder(id="msg_1", model="claude")
    frames = [f for c in chunks for ev in dec.feed(c) for f in enc.feed(ev)] + enc.end()
    msg = check_anthropic_stream(frames)
    assert "".join(b.text for b in msg.content if b.type == "text") == full_text
    tools = [(b.id, b.name, b.input) for b in msg.content if b.type == "tool_use"]
    assert tools == [(i, n, orjson.loads(a)) for i, n, a in calls]
    assert msg.stop_reason == ("tool_use" if calls else "end_turn")
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (30, 20, 7)


@st.composite
def anthropic_upstream(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str, list[tuple[str, str, str]]]:
    calls = [(c.id, c.name, c.arguments) for c in unique_calls(draw, draw(st.integers(0, 3)))]
    texts = draw(st.lists(text, max_size=3))
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_up",
                "type": "message",
                "role": "assistant",
                "model": "claude",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 3,
                    "cache_read_input_tokens": 20,
                },
            },
        }
    ]
    idx = 0
    if draw(st.booleans()):
        events += [
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hm"},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "S"},
            },
            {"type": "content_block_stop", "index": 0},
        ]
        idx = 1
    if texts:
        events.append({"type": "content_block_start", "index": idx, "content_block": {"type": "text", "text": ""}})
        events += [
            {"type": "content_block_delta", "index": idx, "delta": {"type": "text_delta", "text": t}} for t in texts
        ]
        events.append({"type": "content_block_stop", "index": idx})
        idx += 1
    for cid, name, a in calls:
        events.append(
            {
                "type": "content_block_start",
                "index": idx,
                "content_block": {"type": "tool_use", "id": cid, "name": name, "input": {}},
            }
        )
        events += [
            {
                "type": "content_block_delta",
                "index": idx,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
            for p in ["", *split(draw, a)]
        ]
        events.append({"type": "content_block_stop", "index": idx})
        idx += 1
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use" if calls else "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    return events, "".join(texts), calls


@settings(max_examples=200, deadline=None)
@given(up=anthropic_upstream(), include_usage=st.booleans())
def test_anthropic_upstream_to_openai_client_keeps_tool_arguments(
    up: tuple[list[dict[str, Any]], str, list[Any]], include_usage: bool
) -> None:
    events, full_text, calls = up
    dec = AnthropicStreamDecoder()
    enc = OpenAIStreamEncoder(id="gen-1", model="a/b", created=1, provider="Anthropic", include_usage=include_usage)
    frames = [f for e in events for ev in dec.feed(e["type"], e) for f in enc.feed(ev)] + enc.end()
    final = check_openai_stream(frames, include_usage=include_usage)
    choice = final.choices[0]
    assert (choice.message.content or "") == full_text
    tool_calls = choice.message.tool_calls or []
    got = [(t.id, t.function.name, orjson.loads(t.function.arguments)) for t in tool_calls if t.type == "function"]
    assert len(got) == len(tool_calls) and got == [(i, n, orjson.loads(a)) for i, n, a in calls]
    assert choice.finish_reason == ("tool_calls" if calls else "stop")
    if include_usage:
        assert final.usage is not None
        assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (33, 9)
        assert final.usage.prompt_tokens_details.cached_tokens == 20  # type: ignore[union-attr]
