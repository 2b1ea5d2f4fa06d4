from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeprouter.formats import sse
from keeprouter.formats.sse import KEEPALIVE, SSEEvent, SSEParser, sse_data, sse_event


def feed_all(chunks: list[bytes]) -> list[SSEEvent]:
    p = SSEParser()
    out: list[SSEEvent] = []
    for c in chunks:
        out.extend(p.feed(c))
    return out


def test_frame_builders_produce_exact_bytes() -> None:
    assert sse_data(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert sse_event("ping", b'{"type":"ping"}') == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert KEEPALIVE == b": keepalive\n\n"


def test_parses_event_and_data_fields() -> None:
    assert feed_all([b"event: message_start\ndata: {}\n\ndata: x\n\n"]) == [
        SSEEvent("message_start", "{}"),
        SSEEvent(None, "x"),
    ]


def test_comment_lines_and_keepalives_are_skipped() -> None:
    assert feed_all([b": OPENROUTER PROCESSING\n\n: keepalive\n\ndata: 1\n\n"]) == [SSEEvent(None, "1")]


def test_multiline_data_is_joined_with_newline() -> None:
    assert feed_all([b"data: a\ndata: b\ndata:\n\n"]) == [SSEEvent(None, "a\nb\n")]


def test_only_one_space_after_colon_is_removed() -> None:
    assert feed_all([b"data:x\n\ndata:  y\n\n"]) == [SSEEvent(None, "x"), SSEEvent(None, " y")]


def test_event_without_data_is_not_dispatched_and_event_name_resets() -> None:
    assert feed_all([b"event: ping\n\ndata: z\n\n"]) == [SSEEvent(None, "z")]


def test_field_without_colon_and_unknown_fields_are_ignored() -> None:
    assert feed_all([b"data\nid: 5\nretry: 10\nfoo: bar\n\n"]) == [SSEEvent(None, "")]


def test_crlf_split_across_chunks_counts_as_one_line_end() -> None:
    assert feed_all([b"data: a\r", b"\n\r", b"\n"]) == [SSEEvent(None, "a")]


def test_bare_cr_line_ends() -> None:
    assert feed_all([b"event: e\rdata: a\r\r"]) == [SSEEvent("e", "a")]


def test_utf8_sequence_split_across_chunks() -> None:
    raw = "data: héllo → 世界\n\n".encode()
    assert feed_all([raw[i : i + 1] for i in range(len(raw))]) == [SSEEvent(None, "héllo → 世界")]


def test_leading_bom_is_ignored_even_when_split() -> None:
    assert feed_all([b"\xef", b"\xbb", b"\xbfdata: a\n\n"]) == [SSEEvent(None, "a")]


def test_incomplete_event_is_held_until_blank_line() -> None:
    p = SSEParser()
    assert p.feed(b"data: a\n") == []
    assert p.feed(b"") == []
    assert p.feed(b"\n") == [SSEEvent(None, "a")]


def test_overlong_line_raises_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_LINE", 64)
    p = SSEParser()
    p.feed(b"data: " + b"x" * 40)
    with pytest.raises(ValueError):
        p.feed(b"x" * 40)
    with pytest.raises(ValueError):
        SSEParser().feed(b"data: " + b"y" * 100 + b"\n\n")
    p = SSEParser()
    with pytest.raises(ValueError):
        p.feed(b"data: " + b"z" * 40 + b"\ndata: " + b"z" * 40 + b"\n")


_texts = st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=20)
_events = st.lists(
    st.tuples(
        st.none() | st.text(alphabet="abcdefgh_", min_size=1, max_size=8),
        st.lists(_texts, min_size=1, max_size=3),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    events=_events,
    line_ends=st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=1),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
    comments=st.booleans(),
)
def test_parser_is_independent_of_chunking_and_line_ends(
    events: list[tuple[str | None, list[str]]], line_ends: list[bytes], cuts: list[int], comments: bool
) -> None:
    stream = bytearray()
    k = 0

    def line(b: bytes) -> None:
        nonlocal k
        end = line_ends[k % len(line_ends)]
        if not b and end == b"\n" and stream.endswith(b"\r"):
            end = b"\r\n"  # "\r" + "\n" would be one CRLF line end, not a blank line
        stream.extend(b + end)
        k += 1

    expected = []
    for name, datas in events:
        if comments:
            line(b": keep-alive")
        if name is not None:
            line(b"event: " + name.encode())
        for d in datas:
            line(b"data: " + d.encode())
        line(b"")
        expected.append(SSEEvent(name, "\n".join(datas)))
    raw = bytes(stream)
    points = sorted({c % (len(raw) + 1) for c in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert feed_all(chunks) == expected


def test_whole_events_cut_at_blank_lines_keep_the_state_of_an_event_in_progress() -> None:
    p = SSEParser()
    assert p.feed(b"data: a\nevent: e") == []
    assert p.feed(b"\ndata: b\n\ndata: c\n\n: note\ndata: d\n\nevent: f\ndata: g\n\n\n\ndata: h\ndata: i") == [
        SSEEvent("e", "a\nb"),
        SSEEvent(None, "c"),
        SSEEvent(None, "d"),
        SSEEvent("f", "g"),
    ]
    assert p.feed(b"\n\ndata:j\n\n") == [SSEEvent(None, "h\ni"), SSEEvent(None, "j")]
