"""The neutral vocabulary every row translates to and from, so a scenario is written once.

- ``Ask``: what a scenario asks for (messages, system prompt, tools, limits); a client-API row renders
  it as that API's request.
- ``Result``: what the client got back, read by the client-API row from its SDK's objects.
- ``Sent``: what reached the upstream, read by the upstream-kind row from the emulator's record.

Turns are ``Msg`` on both sides: ``user``, ``assistant`` (text and/or tool calls) and ``tool`` (the
results of earlier calls; OpenAI sends one ``tool`` message per result, Anthropic one ``user``
message of ``tool_result`` blocks: both read as one ``tool`` turn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant", "tool"]
# What ended an answer, in one vocabulary; each client-API row says which word its API uses for each.
Finish = Literal["end", "max_tokens", "tool_use", "stop_sequence"]


@dataclass(frozen=True)
class Call:
    """One tool call: its id, the tool's name and the parsed arguments; `extra`, what the client API
    carries beside them on the call and a client sends back with it (Chat's `extra_content`, where
    Gemini's thought signature rides), is not part of what the call is."""

    id: str
    name: str
    args: Any
    extra: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Image:
    """An inline image: media type and standard base64 data."""

    media_type: str
    data: str

    @property
    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.data}"


@dataclass(frozen=True)
class Pdf:
    """An inline PDF document: standard base64 data and its file name (Anthropic's document `title`)."""

    data: str
    name: str

    @property
    def data_url(self) -> str:
        return f"data:application/pdf;base64,{self.data}"


@dataclass(frozen=True)
class Msg:
    role: Role
    text: str = ""
    calls: tuple[Call, ...] = ()
    results: tuple[tuple[str, str], ...] = ()  # (call id, result text), role "tool" only
    images: tuple[Image, ...] = ()
    pdfs: tuple[Pdf, ...] = ()  # role "user" only
    # assistant only: the reasoning the client got with this turn, in its API's own shape
    # (``Result.reasoning``), sent back as that API sends it
    reasoning: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class Ask:
    """One request. ``tool_choice``: "auto", "none", "required", or the name of the one tool to call."""

    messages: tuple[Msg, ...]
    system: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    reasoning: str | None = None  # an effort: reasoning asked for, in the API's own control


@dataclass(frozen=True)
class Failure:
    """An error the client got: an HTTP status (None when it came inside a committed 200 stream),
    the retry-after header, and the shape of the error body (``error_shape``)."""

    status: int | None
    shape: str
    message: str = ""
    retry_after: str | None = None


@dataclass
class Result:
    """What the client got, whatever its API. ``finish`` is the API's own word (``finish_reason``,
    ``stop_reason`` or the response's ``status``); ``input_tokens`` counts cached input too."""

    text: str = ""
    calls: list[Call] = field(default_factory=list)
    finish: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    id: str | None = None
    generation_id: str | None = None  # the X-Generation-Id header
    error: Failure | None = None
    thinking: str = ""  # the reasoning text the client was shown
    reasoning: list[Any] = field(default_factory=list)  # reasoning state in the API's shape, to send back
    headers: dict[str, str] = field(default_factory=dict)  # the answer's X-KeepRouter-* headers


@dataclass(frozen=True)
class Sent:
    """The generation request as the upstream received it."""

    model: str
    system: str | None
    messages: list[Msg]
    tools: list[Tool]
    tool_choice: str | None
    max_tokens: int | None
    stop: list[str]
    stream: bool
    body: dict[str, Any]  # the raw JSON, for the row's own extras

    @property
    def roles(self) -> list[str]:
        return [m.role for m in self.messages]


def error_shape(body: Any) -> str:
    """Name the shape of an error body: ``openai`` (``{"error": {"message", "type", ...}}``),
    ``anthropic`` (``{"type": "error", "error": {"type", "message"}}``), else a description."""
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str) and inner["message"]:
            if body.get("type") == "error" and isinstance(inner.get("type"), str):
                return "anthropic"
            if "type" not in body and ("type" in inner or "code" in inner):
                return "openai"
        return "unknown: " + ",".join(sorted(body))
    return f"unknown: {type(body).__name__}"


def text_of(content: Any) -> str:
    """The text of a content field that is a string, None, or a list of text-bearing parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))
