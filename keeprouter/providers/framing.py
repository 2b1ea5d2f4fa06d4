"""Stream framing: how an upstream cuts its streamed body into events. A seam of the transport.

A `Framing` is fed the body's bytes as they arrive, cut anywhere (inside a line, inside a UTF-8
sequence), and returns the frames those bytes completed: `(event type, payload bytes)`. Decoders
see only frames, never bytes on the wire. Each provider kind's registry row names its framing; the
transport makes a fresh one per stream.

- SSE (`text/event-stream`, OpenAI- and Anthropic-format hosts): `formats.sse`'s parser; the event
  type is the `event:` field (None when absent), the payload the joined `data:` lines.
- A binary event stream (AWS Bedrock) frames by length prefix and carries the event type in a
  header; it is the same protocol, added with the kind that needs it.

A framing raises ValueError for bytes it cannot frame (a line over the bound, a bad checksum); the
transport turns that into an `UpstreamError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson

from keeprouter.formats.sse import SSEFrameParser

Frame = tuple[str | None, bytes]  # (event type, payload)


class Framing(Protocol):
    def feed(self, chunk: bytes) -> list[Frame]:
        """The frames `chunk` completed (often none); partial input is kept for the next call. The
        transport feeds b"" once at the end of the body."""
        ...


FramingFactory = Callable[[], Framing]

# SSE: the parser itself is the framing (no wrapper, so no extra call per chunk on the hot path).
SSE: FramingFactory = SSEFrameParser


def load_json(payload: bytes) -> Any:
    """A frame's JSON payload. Invalid UTF-8 inside it is replaced (U+FFFD) rather than refused, as
    the stream's text always was; raises orjson.JSONDecodeError when it is not JSON at all."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return orjson.loads(payload.decode("utf-8", "replace"))
