"""The stream encoders' and the live stream's shortcut for a plain text delta writes and records
exactly what their general path does, in any mix of events. The general path is reached with a
subclass of TextDelta (the shortcut takes the exact class only)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keeprouter.clients.anthropic_messages.stream import AnthropicStreamEncoder
from keeprouter.clients.openai_chat.stream import OpenAIStreamEncoder
from keeprouter.formats.canonical import (
    Finish,
    LogprobsDelta,
    SignatureDelta,
    Start,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    TokenLogprob,
    ToolCallDelta,
    ToolCallStart,
)
from keeprouter.gateway.live_stream import LiveStream


class GeneralText(TextDelta):
    pass


def general(events: list[StreamEvent]) -> list[StreamEvent]:
    return [GeneralText(text=ev.text) if type(ev) is TextDelta else ev for ev in events]


_text = st.text(max_size=6)
_event = st.one_of(
    _text.map(lambda t: TextDelta(text=t)),
    _text.map(lambda t: TextDelta(text=t)),
    _text.map(lambda t: ThinkingDelta(text=t)),
    st.just(SignatureDelta(signature="sig", origin="anthropic")),
    st.integers(0, 1).map(lambda i: ToolCallStart(index=i, id=f"call_{i}", name="f")),
    st.tuples(st.integers(0, 1), st.sampled_from(["{", '"a":1', "}", "{}"])).map(
        lambda a: ToolCallDelta(index=a[0], arguments=a[1])
    ),
    st.just(LogprobsDelta(content=[TokenLogprob(token="a", logprob=-0.5)])),
)
_stream = st.tuples(st.booleans(), st.lists(_event, max_size=12)).map(
    lambda s: (
        ([Start(id="s", model="m", system_fingerprint="fp")] if s[0] else []) + s[1] + [Finish(stop_reason="end_turn")]
    )
)


def encode(enc: OpenAIStreamEncoder | AnthropicStreamEncoder, events: list[StreamEvent]) -> list[bytes]:
    return [frame for ev in events for frame in enc.feed(ev)] + enc.end()


@settings(max_examples=300, deadline=None)
@given(_stream)
def test_openai_chat_text_shortcut_writes_what_the_general_path_does(events: list[StreamEvent]) -> None:
    def enc() -> OpenAIStreamEncoder:
        return OpenAIStreamEncoder(id="x", model="m", created=1, provider="p", include_usage=True)

    assert encode(enc(), events) == encode(enc(), general(events))


@settings(max_examples=300, deadline=None)
@given(_stream)
def test_anthropic_text_shortcut_writes_what_the_general_path_does(events: list[StreamEvent]) -> None:
    def enc() -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(id="x", model="m", prompt_estimate=3)

    assert encode(enc(), events) == encode(enc(), general(events))


class Issuers:
    def __init__(self) -> None:
        self.recorded: list[str] = []

    def record(self, state: str, endpoint: Any) -> None:
        self.recorded.append(state)


class Owner:
    def __init__(self) -> None:
        self.issuers = Issuers()


class Served:
    candidate = type("Candidate", (), {"endpoint": None})()


class Meter:
    gen_id = "g"
    prompt_estimate = 0


def observed(events: list[StreamEvent]) -> tuple[list[str], list[str]]:
    owner = Owner()
    live = LiveStream(owner, Meter(), Served(), events[0], None)  # type: ignore[arg-type]
    for ev in events:
        live.observe(ev)
    return live._out_chars, owner.issuers.recorded


@settings(max_examples=300, deadline=None)
@given(_stream)
def test_the_live_stream_records_text_the_same_either_way(events: list[StreamEvent]) -> None:
    assert observed(events) == observed(general(events))
