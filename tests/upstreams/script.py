"""Format-neutral scripts: what an emulated upstream should answer to one generation request.

A test queues items with ``server.script(Reply(...), Fault(...))``; each generation request consumes one
item (FIFO). Both emulators render the same ``Reply`` in their own wire format, so one script can drive
the OpenAI and the Anthropic upstream alike.

Token semantics (the root of the double-billing bugs, wire-formats §3.10):
``input_tokens`` is the *uncached* input (Anthropic ``usage.input_tokens``). The OpenAI emulator reports
``prompt_tokens = input_tokens + cache_read + cache_write`` and ``cached_tokens = cache_read``.
``output_tokens`` includes ``reasoning_tokens`` (OpenAI ``completion_tokens``, Anthropic ``output_tokens``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Stop = Literal["end", "max_tokens", "tool_use", "stop_sequence", "refusal"]
Malformed = Literal["json", "sse"]

OPENAI_FINISH: dict[str, str] = {
    "end": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
ANTHROPIC_STOP: dict[str, str] = {
    "end": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "refusal": "refusal",
}


@dataclass(frozen=True)
class ToolCall:
    """One tool call. ``id=None`` lets the emulator generate a provider-shaped id (call_… / toolu_…).

    ``arguments_json`` may also be given as a dict; it is stored as compact JSON text.
    """

    id: str | None
    name: str
    arguments_json: str | dict[str, Any] = "{}"

    def __post_init__(self) -> None:
        if not isinstance(self.arguments_json, str):
            object.__setattr__(self, "arguments_json", json.dumps(self.arguments_json, separators=(",", ":")))

    @property
    def arguments(self) -> str:
        assert isinstance(self.arguments_json, str)
        return self.arguments_json

    @property
    def input(self) -> Any:
        """The arguments as a parsed object (Anthropic ``tool_use.input``)."""
        return json.loads(self.arguments)


@dataclass(frozen=True)
class Reply:
    """A successful answer. ``stop=None`` means ``tool_use`` when there are tool calls, else ``end``."""

    text: str | None = "Hello!"
    tool_calls: list[ToolCall] = field(default_factory=list)
    thinking: str | None = None
    signature: str | None = None  # Anthropic thinking signature; generated when thinking is set
    redacted: str | None = None  # Anthropic redacted_thinking data, answered before the thinking
    stop: Stop | None = None
    stop_sequence: str | None = None
    input_tokens: int = 12
    output_tokens: int = 7
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0  # the part of cache_write written for one hour (Anthropic's split)
    reasoning_tokens: int = 0
    chunk_size: int = 3  # characters per text/thinking delta
    args_chunk: int = 5  # characters per tool-argument fragment
    model: str | None = None  # response model; None echoes the request's model
    id: str | None = None  # response id; None generates chatcmpl-… / msg_…

    @property
    def stop_kind(self) -> Stop:
        if self.stop is not None:
            return self.stop
        return "tool_use" if self.tool_calls else "end"

    @property
    def thinking_signature(self) -> str:
        """The signature of an emulator that does not sign for real (Bedrock's): the scripted one or a fixed one."""
        return self.signature if self.signature is not None else "EqQBCkgIARABGAIiQemulated-signature"

    @property
    def prompt_tokens(self) -> int:
        """OpenAI ``prompt_tokens``: includes cache reads and writes."""
        return self.input_tokens + self.cache_read + self.cache_write


@dataclass(frozen=True)
class Fault:
    """A failure (or a degraded answer) for one request.

    - ``status``: answer with this HTTP status and ``body`` (None: the provider's error shape for it).
      ``body`` may be a dict (sent as JSON) or a str (sent verbatim; set content-type in ``headers``).
    - ``headers``: extra response headers, e.g. ``{"retry-after": "7"}``.
    - ``delay_first_byte``: seconds before the status line is sent.
    - ``reset``: close the socket (TCP RST) before any response.
    - ``hang``: never answer (ends when the client disconnects or the server closes; capped at 120 s).
    - ``malformed``: non-stream: truncated JSON body with 200; stream: after ``malformed_after`` good events,
      one event with invalid JSON (``"json"``) or two events glued without the blank separator line
      (``"sse"``), then the stream ends without a terminal event.
    - ``drip_interval``: seconds between stream events.
    - ``cut_after_chunks``: after N stream events close the connection mid-body (no terminal event,
      incomplete chunked encoding); with ``cut_clean=True`` end the HTTP body properly instead (F11).
    - ``stream_error_after``: after N stream events send an in-stream error (OpenAI: chunk with top-level
      ``error`` + ``finish_reason: "error"``; Anthropic: ``event: error`` overloaded_error) and end.
      A dict ``body`` replaces the error object.
    - ``hold_before``: stream only: stop before the first event containing these bytes until the test
      calls ``server.release()`` (bounded by HANG_MAX), so a test can look at what the client got so far.
    - ``reply``: the content to (partially) send; default: the server's ``default`` reply.
    """

    status: int | None = None
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_first_byte: float = 0.0
    cut_after_chunks: int | None = None
    cut_clean: bool = False
    reset: bool = False
    malformed: Malformed | None = None
    malformed_after: int = 0
    drip_interval: float = 0.0
    hang: bool = False
    stream_error_after: int | None = None
    hold_before: bytes | None = None
    reply: Reply | None = None


Item = Reply | Fault


def pieces(text: str, size: int) -> Iterator[str]:
    """Split ``text`` into consecutive pieces of ``size`` characters (at least one piece if non-empty)."""
    step = max(1, size)
    for start in range(0, len(text), step):
        yield text[start : start + step]
