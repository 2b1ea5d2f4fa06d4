"""A whole answer as stream events and back (formats.replay): what the response cache replays."""

from __future__ import annotations

from keeprouter.formats.canonical import (
    ChatResponse,
    Finish,
    SignatureDelta,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    TokenLogprob,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from keeprouter.formats.replay import answer_of, events_of


def full_answer() -> ChatResponse:
    return ChatResponse(
        id="msg_1",
        model="up",
        content=[
            ThinkingPart(redacted="opaque", origin="anthropic"),
            ThinkingPart(text="Let me think.", signature="sig", origin="anthropic"),
            TextPart(text="I will look it up."),
            ToolCallPart(id="call_1", name="lookup", arguments='{"q": "Paris"}'),
            ToolCallPart(id="call_2", name="weather", arguments="{}", signature="ts", origin="gemini"),
        ],
        stop_reason="tool_use",
        usage=Usage(input_tokens=100, output_tokens=40, cache_read_tokens=80, reasoning_tokens=10),
        logprobs=[TokenLogprob(token="I", logprob=-0.1)],
        system_fingerprint="fp",
    )


def test_an_answer_survives_the_round_trip_through_events() -> None:
    resp = full_answer()
    assert answer_of(events_of(resp)) == resp


def test_the_events_end_with_finish_then_usage() -> None:
    events = events_of(full_answer())
    assert isinstance(events[0], Start) and events[0].id == "msg_1"
    assert isinstance(events[-2], Finish) and events[-2].stop_reason == "tool_use"
    assert isinstance(events[-1], UsageUpdate) and events[-1].usage.cache_read_tokens == 80
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.index for s in starts] == [0, 1]  # tool calls counted on their own


def test_a_stream_in_pieces_is_one_answer() -> None:
    events: list[StreamEvent] = [
        Start(id="m", model="up", usage=Usage(input_tokens=9)),
        ThinkingDelta(text="Hm"),
        ThinkingDelta(text="m."),
        SignatureDelta(signature="ab", origin="anthropic"),
        SignatureDelta(signature="cd", origin="anthropic"),
        TextDelta(text="Par"),
        TextDelta(text="is."),
        ToolCallStart(index=0, id="c", name="f"),
        ToolCallDelta(index=0, arguments='{"a"'),
        ToolCallDelta(index=0, arguments=": 1}"),
        TextDelta(text="Done."),
        Finish(stop_reason="end_turn"),
        UsageUpdate(usage=Usage(input_tokens=9, output_tokens=5)),
    ]
    resp = answer_of(events)
    assert resp.content == [
        ThinkingPart(text="Hmm.", signature="abcd", origin="anthropic"),
        TextPart(text="Paris."),
        ToolCallPart(id="c", name="f", arguments='{"a": 1}'),
        TextPart(text="Done."),
    ]
    assert resp.stop_reason == "end_turn" and resp.usage.output_tokens == 5
    # the gateway's final usage (counted offline when the upstream sent none) wins when given
    assert answer_of(events, Usage(input_tokens=9, output_tokens=7)).usage.output_tokens == 7


def test_an_answer_without_a_stop_reason_replays_as_ended() -> None:
    resp = ChatResponse(id="x", model="up", content=[TextPart(text="Hi")], stop_reason=None)
    finish = [e for e in events_of(resp) if isinstance(e, Finish)]
    assert finish == [Finish(stop_reason="end_turn")]
