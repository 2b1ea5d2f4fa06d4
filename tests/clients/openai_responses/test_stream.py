"""The Responses stream encoder: OpenAI's event order, sequence numbers, items, terminal events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from formats.fmt_helpers import check_responses_stream
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage

from keeprouter.clients.openai_responses.request import parse_request
from keeprouter.clients.openai_responses.response import build_response, echo_of
from keeprouter.clients.openai_responses.stream import ResponsesStreamEncoder
from keeprouter.errors import RateLimited, UpstreamError
from keeprouter.formats.canonical import (
    ChatResponse,
    Finish,
    RedactedThinking,
    SignatureDelta,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    Usage,
    UsageUpdate,
)

WX = {"type": "function", "name": "wx", "parameters": {"type": "object"}}
USAGE = Usage(input_tokens=20, output_tokens=9, cache_read_tokens=4, reasoning_tokens=3)

AN = "anthropic"  # what the Anthropic decoder stamps on the signed state it sees


def encoder(**body: Any) -> ResponsesStreamEncoder:
    req = parse_request({"model": "m", "input": "hi", **body})
    return ResponsesStreamEncoder(id="resp_1-ab", model="m", created=1700, echo=echo_of(req))


def run(events: list[StreamEvent], *, usage: Usage | None = None, cost: Decimal | None = None,
        same_output: bool = True, **body: Any) -> tuple[list[dict[str, Any]], Any]:  # fmt: skip
    enc = encoder(**body)
    frames = [f for ev in events for f in enc.feed(ev)]
    frames += enc.end(usage, cost)
    return check_responses_stream(frames, same_output=same_output)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_text_stream_has_openais_exact_event_sequence() -> None:
    events, final = run(
        [Start(id="x", model="up"), TextDelta(text="Hel"), TextDelta(text=""), TextDelta(text="lo"),
         Finish(stop_reason="end_turn"), UsageUpdate(usage=USAGE)],
        cost=Decimal("0.0001"),
    )  # fmt: skip
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    created = events[0]["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    assert events[2]["item"] == {"id": "msg_1-ab_0", "type": "message", "status": "in_progress",
                                 "role": "assistant", "content": []}  # fmt: skip
    assert events[3]["part"] == {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    assert events[4]["logprobs"] == [] and events[4]["content_index"] == 0
    assert final.status == "completed" and final.output_text == "Hello" and final.incomplete_details is None
    assert final.id == "resp_1-ab" and final.model == "m" and final.created_at == 1700
    assert final.output[0].status == "completed"
    u = events[-1]["response"]["usage"]
    assert u == {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 29,
        "cost": 0.0001,
    }


def test_frames_are_event_and_data_lines() -> None:
    enc = encoder()
    frames = enc.feed(Start(id="x", model="up"))
    assert frames[0].startswith(b"event: response.created\ndata: {")
    assert frames[0].endswith(b"}\n\n")
    assert orjson.loads(frames[1].split(b"data: ", 1)[1])["sequence_number"] == 1


def test_text_then_tool_call_closes_the_message_first() -> None:
    events, final = run(
        [Start(id="x", model="up"), TextDelta(text="Let me check."), ToolCallStart(index=0, id="call_1", name="wx"),
         ToolCallDelta(index=0, arguments='{"city":'), ToolCallDelta(index=0, arguments='"Paris"}'),
         Finish(stop_reason="tool_use")],
    )  # fmt: skip
    seq = types(events)
    assert seq.index("response.output_item.done") < seq.index("response.function_call_arguments.delta")
    added = [e for e in events if e["type"] == "response.output_item.added"][1]["item"]
    assert added == {"id": "fc_1-ab_1", "type": "function_call", "status": "in_progress", "arguments": "",
                     "call_id": "call_1", "name": "wx"}  # fmt: skip
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [d["arguments"] for d in done] == ['{"city":"Paris"}']
    call = final.output[1]
    assert call.type == "function_call" and call.call_id == "call_1" and call.arguments == '{"city":"Paris"}'
    assert call.status == "completed" and final.status == "completed"
    assert final.usage is not None and final.usage.input_tokens == 0  # no usage seen: zeros, never missing


def test_parallel_calls_with_interleaved_fragments_each_land_in_their_own_item() -> None:
    events, final = run(
        [Start(id="x", model="up"), ToolCallStart(index=0, id="a", name="wx"),
         ToolCallStart(index=1, id="b", name="wx"),
         ToolCallDelta(index=1, arguments='{"city":"Rome"}'), ToolCallDelta(index=0, arguments='{"city":"Paris"}'),
         ToolCallStart(index=0, id="a", name="wx"), ToolCallDelta(index=7, arguments="lost"),
         Finish(stop_reason="tool_use")],
        parallel_tool_calls=True,
    )  # fmt: skip
    assert [(o.call_id, o.arguments) for o in final.output] == [("a", '{"city":"Paris"}'), ("b", '{"city":"Rome"}')]
    assert types(events).count("response.output_item.added") == 2
    assert final.parallel_tool_calls is True


def test_text_after_tool_calls_closes_them_and_opens_a_new_message() -> None:
    events, final = run(
        [ToolCallStart(index=0, id="a", name="f"), ToolCallDelta(index=0, arguments="{}"), TextDelta(text="done"),
         ToolCallDelta(index=0, arguments=" "), Finish(stop_reason="end_turn")],
        same_output=False,
    )  # fmt: skip
    assert [o.type for o in final.output] == ["function_call", "message"]
    # a late fragment of a closed call is not streamed, but the final output keeps it
    assert types(events).count("response.function_call_arguments.delta") == 1
    assert final.output[0].arguments == "{} "


def test_reasoning_streams_as_a_summary_then_text() -> None:
    events, final = run(
        [Start(id="x", model="up", usage=Usage(input_tokens=5)), ThinkingDelta(text="Think"), ThinkingDelta(text=""),
         ThinkingDelta(text="ing"), SignatureDelta(signature="sig", origin=AN),
         RedactedThinking(data="opaque", origin=AN),
         TextDelta(text="Answer"), Finish(stop_reason="end_turn")],
        usage=USAGE,
        reasoning={"effort": "high", "summary": "auto"},
    )  # fmt: skip
    assert types(events)[2:9] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    assert events[2]["item"] == {"id": "rs_1-ab_0", "type": "reasoning", "summary": []}
    assert events[3]["part"] == {"type": "summary_text", "text": ""} and events[3]["summary_index"] == 0
    rs = final.output[0]
    assert rs.type == "reasoning" and [s.text for s in rs.summary] == ["Thinking"]
    # signed state rides along sealed, the redacted block as an item of its own with no summary
    assert rs.encrypted_content == "kr1.s.anthropic.sig"
    redacted = final.output[1]
    assert redacted.type == "reasoning" and redacted.summary == []
    assert redacted.encrypted_content == "kr1.r.anthropic.opaque"
    assert [e["type"] for e in events if e.get("output_index") == 1] == [
        "response.output_item.added", "response.output_item.done"]  # fmt: skip
    assert [o.type for o in final.output] == ["reasoning", "reasoning", "message"]
    assert final.output_text == "Answer"
    assert final.reasoning is not None and final.reasoning.effort == "high"
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 3


def test_a_signature_without_thinking_text_is_a_reasoning_item_without_summary() -> None:
    events, final = run(
        [SignatureDelta(signature="s1", origin=AN), SignatureDelta(signature="s2", origin=AN), TextDelta(text="x")]
    )
    assert "response.reasoning_summary_part.added" not in types(events)
    assert final.output[0].summary == [] and final.output[0].encrypted_content == "kr1.s.anthropic.s1s2"


def test_signed_state_of_unknown_origin_is_not_sealed() -> None:
    # only state stamped with the provider kind that issued it can be replayed, so only that is sealed
    _, final = run([ThinkingDelta(text="t"), SignatureDelta(signature="s1"), TextDelta(text="x")])
    assert final.output[0].encrypted_content is None
    _, final = run([RedactedThinking(data="opaque"), TextDelta(text="x")])
    assert final.output[0].encrypted_content is None


def test_custom_tool_calls_stream_their_bare_input_when_whole() -> None:
    grammar = {"type": "grammar", "syntax": "lark", "definition": "s"}
    custom = {"type": "custom", "name": "apply_patch", "format": grammar}
    events, final = run(
        [ToolCallStart(index=0, id="c1", name="apply_patch"), ToolCallDelta(index=0, arguments='{"input":"*** Begin'),
         ToolCallDelta(index=0, arguments='\\n"}'), ToolCallStart(index=1, id="c2", name="apply_patch"),
         ToolCallStart(index=2, id="c3", name="wx"), ToolCallDelta(index=2, arguments="{}"),
         TextDelta(text="ok"), ToolCallDelta(index=1, arguments='{"input":"late"}'), Finish(stop_reason="tool_use")],
        tools=[custom, WX], same_output=False,
    )  # fmt: skip
    added = next(e["item"] for e in events if e["type"] == "response.output_item.added")
    assert added == {"id": "ctc_1-ab_0", "type": "custom_tool_call", "call_id": "c1", "name": "apply_patch",
                     "input": ""}  # fmt: skip
    assert [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"] == ["*** Begin\n"]
    assert [(o.type, getattr(o, "input", None)) for o in final.output] == [
        ("custom_tool_call", "*** Begin\n"),
        ("custom_tool_call", "late"),
        ("function_call", None),
        ("message", None),
    ]
    assert "response.function_call_arguments.delta" in types(events)  # the function tool still streams


def test_thinking_after_a_tool_call_starts_a_new_reasoning_item() -> None:
    _, final = run([ToolCallStart(index=0, id="a", name="f"), ThinkingDelta(text="hm"), Finish(stop_reason="end_turn")])
    assert [o.type for o in final.output] == ["function_call", "reasoning"]


def test_max_tokens_ends_incomplete_with_the_reason() -> None:
    events, final = run([TextDelta(text="cut"), Finish(stop_reason="max_tokens"), UsageUpdate(usage=USAGE)],
                        max_output_tokens=3)  # fmt: skip
    assert events[-1]["type"] == "response.incomplete"
    assert final.status == "incomplete"
    assert final.incomplete_details is not None and final.incomplete_details.reason == "max_output_tokens"
    assert final.output[0].status == "incomplete" and final.max_output_tokens == 3


def test_max_tokens_while_thinking_leaves_the_reasoning_item_as_it_is() -> None:
    _, final = run([ThinkingDelta(text="hm"), Finish(stop_reason="max_tokens")])
    assert final.status == "incomplete" and final.output[0].type == "reasoning"


def test_content_filter_is_incomplete_content_filter() -> None:
    _, final = run([TextDelta(text="no"), Finish(stop_reason="content_filter")])
    assert final.incomplete_details is not None and final.incomplete_details.reason == "content_filter"


def test_empty_stream_still_opens_and_completes() -> None:
    enc = encoder()
    events, final = check_responses_stream(enc.end())
    assert types(events) == ["response.created", "response.in_progress", "response.completed"]
    assert final.output == [] and final.usage is not None and final.usage.total_tokens == 0


def test_failure_mid_stream_closes_open_items_incomplete_then_fails() -> None:
    enc = encoder()
    frames = enc.feed(TextDelta(text="par")) + enc.feed(ToolCallStart(index=0, id="a", name="f"))
    frames += enc.feed(TextDelta(text="tial"))
    frames += enc.error(UpstreamError("upstream died"))
    events, final = check_responses_stream(frames)
    assert events[-1]["type"] == "response.failed"
    assert final.status == "failed" and final.error is not None
    assert final.error.code == "server_error" and final.error.message == "upstream died"
    statuses = [o.status for o in final.output if isinstance(o, ResponseOutputMessage | ResponseFunctionToolCall)]
    assert len(statuses) == len(final.output) and statuses == ["completed", "completed", "incomplete"]
    assert final.usage is None


def test_failure_before_any_event_still_starts_with_response_created() -> None:
    enc = ResponsesStreamEncoder(id="resp_failed", model="m", created=1, echo=echo_of(None))
    events, final = check_responses_stream(enc.error(RateLimited("slow down")))
    assert types(events) == ["response.created", "response.in_progress", "response.failed"]
    assert final.error is not None and final.error.code == "rate_limit_exceeded"
    # `store` is not a declared field of the SDK's Response (kept as an extra field), hence model_dump
    assert final.tools == [] and final.tool_choice == "auto" and final.model_dump()["store"] is False


def test_bad_request_upstream_error_is_invalid_prompt() -> None:
    enc = encoder()
    _, final = check_responses_stream(enc.error(UpstreamError("prompt is too long", status=400)))
    assert final.error is not None and final.error.code == "invalid_prompt"


def test_the_request_is_echoed_in_every_response_object() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}]
    events, final = run(
        [TextDelta(text="x")],
        instructions="Be brief.",
        tools=tools,
        tool_choice="required",
        temperature=0.5,
        top_p=0.9,
        metadata={"k": "v"},
        user="u1",
        text={"format": {"type": "json_object"}},
        store=False,
    )
    for ev in (events[0], events[1], events[-1]):
        r = ev["response"]
        assert r["instructions"] == "Be brief." and r["tools"] == tools and r["tool_choice"] == "required"
        assert (r["temperature"], r["top_p"], r["metadata"], r["user"]) == (0.5, 0.9, {"k": "v"}, "u1")
        assert r["text"] == {"format": {"type": "json_object"}} and r["store"] is False
        assert r["previous_response_id"] is None and r["error"] is None
    assert final.text is not None and final.text.format is not None and final.text.format.type == "json_object"


# ---- any stream: the invariants hold, and it ends with the object a whole answer gets ---------

piece = st.text(min_size=1, max_size=6)
block = st.one_of(
    st.tuples(st.just("text"), st.lists(piece, min_size=1, max_size=4)),
    st.tuples(st.just("thinking"), st.lists(piece, min_size=1, max_size=4), st.none() | st.text("ab=+/", min_size=1)),
    st.tuples(st.just("redacted"), st.text("xyz", min_size=1, max_size=5)),
    st.tuples(st.just("calls"), st.lists(st.lists(piece, max_size=3), min_size=1, max_size=3), st.randoms()),
)


def _merge(blocks: list[Any]) -> list[Any]:
    """Adjacent text or thinking blocks would continue one item in a stream: keep one of each run."""
    out: list[Any] = []
    for b in blocks:
        if out and b[0] == out[-1][0] and b[0] in ("text", "thinking"):
            continue
        out.append(b)
    return out


@settings(max_examples=150, deadline=None)
@given(blocks=st.lists(block, max_size=6).map(_merge), stop=st.sampled_from(["end_turn", "tool_use", "max_tokens"]))
def test_any_stream_ends_with_the_whole_answers_object(blocks: list[Any], stop: Any) -> None:
    events: list[StreamEvent] = [Start(id="x", model="up")]
    content: list[Any] = []
    n_calls = 0
    for b in blocks:
        if b[0] == "text":
            events += [TextDelta(text=p) for p in b[1]]
            content.append(TextPart(text="".join(b[1])))
        elif b[0] == "thinking":
            events += [ThinkingDelta(text=p) for p in b[1]]
            if b[2]:
                events.append(SignatureDelta(signature=b[2], origin=AN))
            content.append(ThinkingPart(text="".join(b[1]), signature=b[2], origin="anthropic"))
        elif b[0] == "redacted":
            events.append(RedactedThinking(data=b[1], origin=AN))
            content.append(ThinkingPart(redacted=b[1], origin="anthropic"))
        else:  # parallel calls, their fragments interleaved at random (each call's in its order)
            pending: list[list[ToolCallDelta]] = []
            for frags in b[1]:
                i = n_calls
                n_calls += 1
                events.append(ToolCallStart(index=i, id=f"call_{i}", name="f"))
                pending.append([ToolCallDelta(index=i, arguments=f) for f in frags])
                content.append(ToolCallPart(id=f"call_{i}", name="f", arguments="".join(frags)))
            while pending := [p for p in pending if p]:
                events.append(b[2].choice(pending).pop(0))
    events += [Finish(stop_reason=stop), UsageUpdate(usage=USAGE)]
    enc = encoder()
    frames = [f for ev in events for f in enc.feed(ev)] + enc.end(None, Decimal("0.01"))
    streamed, _ = check_responses_stream(frames)
    whole = build_response(ChatResponse(id="x", model="up", content=content, stop_reason=stop, usage=USAGE),
                           id="resp_1-ab", model="m", created=1700, echo=enc_echo(), cost=Decimal("0.01"))  # fmt: skip
    assert streamed[-1]["response"] == whole


def enc_echo() -> dict[str, Any]:
    return echo_of(parse_request({"model": "m", "input": "hi"}))
