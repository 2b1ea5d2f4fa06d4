"""AWS's binary event stream (`application/vnd.amazon.eventstream`): an incremental decoder.

Each message on the wire:

    total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32

all integers big-endian; `prelude_crc` is the CRC-32 of the first 8 bytes and `message_crc` the CRC-32
of everything before it. A header is `name_length u8 | name | value_type u8 | value`; ConverseStream
sends strings (type 7: `u16 length | UTF-8`), the other types are skipped by their fixed or prefixed
size. The `:message-type` header says what a message is: `event` (named by `:event-type`),
`exception` (named by `:exception-type`, a JSON `{"message"}` payload) or `error` (`:error-code` and
`:error-message` headers, no payload).

`EventStreamDecoder` is the bedrock kind's `framing.Framing`: `feed(chunk) -> [(name, payload)]`,
bytes in, in any split down to one byte, whole messages out. Events come out under their event type, exceptions under
their exception type (these end in "Exception"), and `error` messages as `(":error", payload)` with
a JSON `{"code", "message"}` payload built from their headers. Corruption (a CRC mismatch, a length
out of bounds, a malformed header) raises ValueError; the decoder is then unusable.
"""

from __future__ import annotations

import struct
import zlib

import orjson

from keeprouter.providers.framing import Frame

MAX_MESSAGE = 16 * 1024 * 1024  # AWS bounds one event-stream message at 16 MB
PRELUDE = 12
OVERHEAD = 16  # prelude + message CRC
ERROR = ":error"

_U32 = struct.Struct(">I")
_LENGTHS = struct.Struct(">II")
# value type -> fixed size in bytes (None: a u16 length prefix follows); 0/1 are booleans, no bytes
_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
_STRING, _BYTES = 7, 6


class EventStreamDecoder:
    """Feed raw body bytes as they arrive; get back the messages they complete."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._max = max_message

    @property
    def pending(self) -> int:
        """Bytes held for a message not yet complete (non-zero at the end: the stream was cut)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buf += chunk
        out: list[Frame] = []
        buf = self._buf
        while len(buf) >= PRELUDE:
            total, header_len = _LENGTHS.unpack_from(buf)
            if zlib.crc32(buf[:8]) != _U32.unpack_from(buf, 8)[0]:
                raise ValueError("event stream: prelude CRC mismatch")
            if total < OVERHEAD or total > self._max:
                raise ValueError(f"event stream: message length {total} out of bounds")
            if header_len > total - OVERHEAD:
                raise ValueError("event stream: headers longer than the message")
            if len(buf) < total:
                break
            message = bytes(buf[:total])
            del buf[:total]
            if zlib.crc32(message[:-4]) != _U32.unpack_from(message, total - 4)[0]:
                raise ValueError("event stream: message CRC mismatch")
            headers = _headers(message[PRELUDE : PRELUDE + header_len])
            out.append(_named(headers, message[PRELUDE + header_len : -4]))
        return out


def _named(headers: dict[str, str], payload: bytes) -> Frame:
    kind = headers.get(":message-type", "event")
    if kind == "event":
        return headers.get(":event-type", ""), payload
    if kind == "exception":
        return headers.get(":exception-type", "exception"), payload
    if kind == "error":
        body = {"code": headers.get(":error-code", ""), "message": headers.get(":error-message", "")}
        return ERROR, orjson.dumps(body)
    raise ValueError(f"event stream: unknown message type {kind!r}")


def _headers(raw: bytes) -> dict[str, str]:
    """The string-valued headers (the only kind names and types come in); others are skipped."""
    out: dict[str, str] = {}
    i, end = 0, len(raw)
    while i < end:
        name_len = raw[i]
        i += 1
        if name_len == 0 or i + name_len + 1 > end:
            raise ValueError("event stream: malformed header")
        name = raw[i : i + name_len].decode("utf-8", "replace")
        i += name_len
        value_type = raw[i]
        i += 1
        if value_type in (_STRING, _BYTES):
            if i + 2 > end:
                raise ValueError("event stream: malformed header")
            size = int.from_bytes(raw[i : i + 2], "big")
            i += 2
            if i + size > end:
                raise ValueError("event stream: malformed header")
            if value_type == _STRING:
                try:
                    out[name] = raw[i : i + size].decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError("event stream: header value is not UTF-8") from None
            i += size
        elif value_type in _FIXED:
            i += _FIXED[value_type]
            if i > end:
                raise ValueError("event stream: malformed header")
        else:
            raise ValueError(f"event stream: unknown header value type {value_type}")
    return out
