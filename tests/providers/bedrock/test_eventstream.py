"""The event-stream decoder against frames built by the emulator's own encoder (written apart)."""

from __future__ import annotations

import binascii
import json
import struct

import pytest
from upstreams.bedrock_server import event, exception, frame

from keeprouter.providers.bedrock.eventstream import ERROR, EventStreamDecoder

STREAM = b"".join(
    [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "héllo ✓"}}),
        event("messageStop", {"stopReason": "end_turn"}),
        exception("throttlingException", "slow down"),
    ]
)
EXPECTED = [
    ("messageStart", b'{"role":"assistant"}'),
    (
        "contentBlockDelta",
        json.dumps({"contentBlockIndex": 0, "delta": {"text": "héllo ✓"}}, separators=(",", ":")).encode(),
    ),
    ("messageStop", b'{"stopReason":"end_turn"}'),
    ("throttlingException", b'{"message": "slow down"}'),
]


def test_whole_stream_in_one_chunk() -> None:
    d = EventStreamDecoder()
    assert d.feed(STREAM) == EXPECTED
    assert d.pending == 0


def test_every_split_point_gives_the_same_messages() -> None:
    for i in range(len(STREAM) + 1):
        d = EventStreamDecoder()
        assert d.feed(STREAM[:i]) + d.feed(STREAM[i:]) == EXPECTED, i


def test_one_byte_at_a_time() -> None:
    d = EventStreamDecoder()
    out = []
    for i in range(len(STREAM)):
        out += d.feed(STREAM[i : i + 1])
    assert out == EXPECTED


def test_partial_message_is_held() -> None:
    d = EventStreamDecoder()
    assert d.feed(STREAM[:20]) == []
    assert d.pending == 20


def test_bad_message_crc_raises() -> None:
    bad = bytearray(event("messageStart", {"role": "assistant"}))
    bad[-1] ^= 0x01
    with pytest.raises(ValueError, match="message CRC"):
        EventStreamDecoder().feed(bytes(bad))


def test_corrupt_payload_raises() -> None:
    bad = bytearray(event("contentBlockDelta", {"delta": {"text": "abc"}}))
    bad[-10] ^= 0x20
    with pytest.raises(ValueError, match="message CRC"):
        EventStreamDecoder().feed(bytes(bad))


def test_bad_prelude_crc_raises_before_the_message_is_whole() -> None:
    bad = bytearray(event("messageStart", {"role": "assistant"}))
    bad[3] ^= 0x01  # total length changed: the prelude CRC no longer matches
    with pytest.raises(ValueError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(bad[:12]))


def _prelude(total: int, headers: int) -> bytes:
    p = struct.pack(">II", total, headers)
    return p + struct.pack(">I", binascii.crc32(p))


def test_message_size_is_bounded() -> None:
    with pytest.raises(ValueError, match="out of bounds"):
        EventStreamDecoder(max_message=1024).feed(_prelude(2048, 0))
    with pytest.raises(ValueError, match="out of bounds"):
        EventStreamDecoder().feed(_prelude(8, 0))


def test_headers_longer_than_message_raise() -> None:
    with pytest.raises(ValueError, match="headers longer"):
        EventStreamDecoder().feed(_prelude(32, 20))


def _with_crc(headers: bytes, payload: bytes) -> bytes:
    body = _prelude(12 + len(headers) + len(payload) + 4, len(headers)) + headers + payload
    return body + struct.pack(">I", binascii.crc32(body))


def _h(name: str, kind: int, value: bytes) -> bytes:
    return bytes([len(name)]) + name.encode() + bytes([kind]) + value


def test_non_string_headers_are_skipped() -> None:
    headers = b"".join(
        [
            _h("flag", 0, b""),
            _h("off", 1, b""),
            _h("b", 2, b"\x01"),
            _h("s", 3, b"\x00\x02"),
            _h("i", 4, b"\x00\x00\x00\x03"),
            _h("l", 5, b"\x00" * 8),
            _h("blob", 6, b"\x00\x03abc"),
            _h("ts", 8, b"\x00" * 8),
            _h("id", 9, b"\x11" * 16),
            _h(":event-type", 7, b"\x00\x08metadata"),
        ]
    )
    assert EventStreamDecoder().feed(_with_crc(headers, b"{}")) == [("metadata", b"{}")]


def test_unknown_header_type_raises() -> None:
    with pytest.raises(ValueError, match="header value type"):
        EventStreamDecoder().feed(_with_crc(_h("x", 42, b""), b""))


def test_truncated_header_raises() -> None:
    with pytest.raises(ValueError, match="malformed header"):
        EventStreamDecoder().feed(_with_crc(_h("x", 7, b"\x00\x09abc"), b""))


def test_error_message_type() -> None:
    f = frame({":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b"")
    [(name, payload)] = EventStreamDecoder().feed(f)
    assert name == ERROR
    assert json.loads(payload) == {"code": "InternalFailure", "message": "boom"}


def test_unknown_message_type_raises() -> None:
    with pytest.raises(ValueError, match="unknown message type"):
        EventStreamDecoder().feed(frame({":message-type": "gossip"}, b""))
