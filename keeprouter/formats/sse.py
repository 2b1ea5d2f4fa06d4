"""Server-sent events: an incremental parser for upstream streams and the frame builders for clients.

The parser follows the WHATWG event-stream rules that matter to LLM APIs: any chunk boundary (down to
one byte, inside a UTF-8 sequence), `\\n`, `\\r\\n` or `\\r` line ends (a `\\r\\n` split across chunks
counts once), `:` comment lines skipped, `data:` lines joined with `\\n`, one optional space after the
colon removed, a blank line dispatches, a leading BOM ignored. `id:` and `retry:` are ignored (no
reconnection here). Lines and events are bounded to `MAX_LINE` bytes so a broken upstream cannot
exhaust memory: past it `feed` raises ValueError.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_LINE = 16 * 1024 * 1024
KEEPALIVE = b": keepalive\n\n"

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    event: str | None
    data: str


class SSEFrameParser:
    """Feed raw bytes as they arrive; get back `(event type, data bytes)` for the events completed by
    them. The data stays bytes (a JSON parser reads them as they are): the upstream stream's hot path."""

    __slots__ = ("_buf", "_data", "_data_len", "_event", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False  # the previous chunk ended in "\r": a leading "\n" belongs to it
        self._started = False
        self._event: str | None = None
        self._data: list[bytes] | None = None
        self._data_len = 0

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" in buf:
            lines = _LINE_END.split(buf)
            if buf[-1] == 0x0D:
                self._skip_lf = True
        else:
            lines = buf.split(b"\n")
        rest = lines.pop()
        if len(rest) > MAX_LINE:
            raise ValueError(f"SSE line longer than {MAX_LINE} bytes")
        self._buf = rest
        if not lines:
            return []
        if len(buf) > MAX_LINE and max(map(len, lines)) > MAX_LINE:
            raise ValueError(f"SSE line longer than {MAX_LINE} bytes")
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[tuple[str | None, bytes]]:
        if self._data is None and self._event is None and not any(lines[1::2]):
            # Nearly every event of a long stream is one `data: ` line and a blank line: taken by
            # slices and one comprehension, not the field-by-field loop below.
            datas = lines[0::2]
            out: list[tuple[str | None, bytes]] = [(None, line[6:]) for line in datas if line[:6] == b"data: "]
            if len(out) == len(datas):
                if len(lines) % 2:  # the last event has its data line but not yet its blank line
                    value = out.pop()[1]
                    self._data, self._data_len = [value], len(value) + 1
                return out
        return self._fields(lines)

    def _fields(self, lines: list[bytes]) -> list[tuple[str | None, bytes]]:
        out: list[tuple[str | None, bytes]] = []
        for line in lines:
            if not line:
                data = self._data
                if data is not None:
                    out.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                self._event = None
                self._data = None
                self._data_len = 0
                continue
            if line[0] == 0x3A:  # ":" comment / keep-alive
                continue
            colon = line.find(b":")
            if colon < 0:
                field, value = line, b""
            else:
                field, value = line[:colon], line[colon + 1 :]
                if value[:1] == b" ":
                    value = value[1:]
            if field == b"data":
                self._data_len += len(value) + 1
                if self._data_len > MAX_LINE:
                    raise ValueError(f"SSE event longer than {MAX_LINE} bytes")
                if self._data is None:
                    self._data = [value]
                else:
                    self._data.append(value)
            elif field == b"event":
                self._event = value.decode("utf-8", "replace") or None
        return out


class SSEParser:
    """The same events with their data as text (invalid UTF-8 replaced)."""

    __slots__ = ("_frames",)

    def __init__(self) -> None:
        self._frames = SSEFrameParser()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return [SSEEvent(event, data.decode("utf-8", "replace")) for event, data in self._frames.feed(chunk)]


def sse_data(payload: bytes) -> bytes:
    """One `data:` frame; `payload` must not contain a newline (orjson output never does)."""
    return b"data: " + payload + b"\n\n"


def sse_event(event: str, payload: bytes) -> bytes:
    """One `event:` + `data:` frame (Anthropic style)."""
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"
