"""Stream framing: bytes cut anywhere in, (event type, payload bytes) frames out."""

from __future__ import annotations

import orjson
import pytest

from keeprouter.formats import sse
from keeprouter.providers.framing import SSE, Frame, load_json

BODY = (
    b'\xef\xbb\xbf: comment\n\nevent: message_start\ndata: {"t": "\xe6\x97\xa5"}\n\n'
    b"data: a\r\ndata: b\r\n\r\ndata: [DONE]\n\n"
)
FRAMES: list[Frame] = [("message_start", '{"t": "日"}'.encode()), (None, b"a\nb"), (None, b"[DONE]")]


def _frames(chunks: list[bytes]) -> list[Frame]:
    framing = SSE()
    return [f for c in chunks for f in framing.feed(c)]


@pytest.mark.parametrize("size", range(1, 12))
def test_sse_frames_are_the_same_however_the_bytes_are_cut(size: int) -> None:
    assert _frames([BODY[i : i + size] for i in range(0, len(BODY), size)]) == FRAMES


def test_sse_payloads_stay_bytes_and_are_not_decoded() -> None:
    assert _frames([b"data: \xff\xfe\n\n"]) == [(None, b"\xff\xfe")]


def test_each_stream_gets_a_fresh_framer() -> None:
    first, second = SSE(), SSE()
    assert first.feed(b"data: half") == []
    assert second.feed(b"data: whole\n\n") == [(None, b"whole")]


def test_a_line_over_the_bound_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_LINE", 16)
    with pytest.raises(ValueError, match="longer than"):
        SSE().feed(b"data: " + b"x" * 32)


def test_load_json_reads_bytes_and_replaces_invalid_utf8() -> None:
    assert load_json(b'{"a": "\xc3\xa9"}') == {"a": "é"}
    assert load_json(b'{"a": "x\xffy"}') == {"a": "x\ufffdy"}
    with pytest.raises(orjson.JSONDecodeError):
        load_json(b"{nope")
