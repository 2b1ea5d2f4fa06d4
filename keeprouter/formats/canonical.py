"""The canonical model: the one internal shape every client API and provider translates to and from.

It is a superset shaped after Anthropic's content blocks (the richer of the two formats):

    ChatRequest
      system: [TextPart]                      (OpenAI system/developer messages end up here)
      messages: [Message(role, [Part])]       role is "user" | "assistant" (| "system" mid-conversation)
        Part = TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ThinkingPart
      tools, tool_choice, sampling parameters, stream flags
    ChatResponse(content: [Part], stop_reason, usage, logprobs, more_choices)
    StreamEvent = Start | TextDelta | ThinkingDelta | SignatureDelta | RedactedThinking
                | ToolCallStart | ToolCallDelta | Finish | UsageUpdate | LogprobsDelta

Conventions:
- Tool results live in *user* messages as ToolResultPart (Anthropic's rule); OpenAI `role: "tool"`
  messages are merged into one user turn on the way in and split out again on the way out.
- Tool-call arguments stay a JSON *string* (`arguments`) so streamed fragments concatenate exactly.
- Usage is normalised: `input_tokens` INCLUDES cached reads and writes (OpenAI's convention); the
  Anthropic translator adds `cache_read_input_tokens + cache_creation_input_tokens` on the way in and
  subtracts them on the way out. Billing reads only this shape.
- Stop reasons use Anthropic's names plus "content_filter" and "error".
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import msgspec

# "system" messages are instructions placed mid-conversation (Anthropic's mid-conversation-system
# beta, which Claude Code uses); leading system prompts live in ChatRequest.system.
Role = Literal["user", "assistant", "system"]
# The client API a request came in through. Upstream translators replay `extra` and client-specific
# state only to their own format; "responses" (OpenAI Responses) matches no upstream format, so
# nothing of it is replayed verbatim.
ApiFormat = Literal["openai", "anthropic", "responses"]

# Body fields that steer KeepRouter itself (OpenRouter's names); never forwarded upstream.
ROUTER_FIELDS = frozenset(
    {"provider", "models", "route", "transforms", "plugins", "usage", "fallbacks", "session_id", "trace", "debug"}
)
StopReason = Literal["end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter", "error"]


class TextPart(msgspec.Struct, tag="text", kw_only=True):
    text: str
    cache_control: dict[str, Any] | None = None


class ImagePart(msgspec.Struct, tag="image", kw_only=True):
    """An image: either a URL (`url`) or inline base64 (`media_type` + `data`)."""

    url: str | None = None
    media_type: str | None = None
    data: str | None = None
    detail: str | None = None
    cache_control: dict[str, Any] | None = None


def inline_image_problem(media_type: object, data: object) -> str | None:
    """Why inline image data cannot be passed on (an `image/*` media type and non-empty standard
    base64; line breaks and missing padding allowed), or None when it can."""
    if not isinstance(media_type, str) or not media_type.lower().startswith("image/"):
        return "must have an image/* media type"
    if not isinstance(data, str) or not data.strip():
        return "must have base64 image data"
    try:
        base64.b64decode(data, validate=True)
    except ValueError:  # binascii.Error, or text that is not ASCII
        compact = data.translate(_WHITESPACE)
        try:  # line breaks and missing padding are common and harmless
            base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        except ValueError:
            return "must have valid base64 image data"
    return None


_WHITESPACE = str.maketrans("", "", " \t\r\n")


class DocumentPart(msgspec.Struct, tag="document", kw_only=True):
    """A document (a PDF or another file) in exactly one of four forms: inline base64 `data` with its
    `media_type`, a `url`, plain `text`, or `file_id` (a file stored at an OpenAI-format upstream).
    `title`, `context` and `citations` are Anthropic's document options; `filename` is OpenAI's.
    `where` names the part as the client sent it (`messages[0].content[1]`), for a translator that
    cannot send it to say which part it refuses."""

    data: str | None = None
    media_type: str | None = None
    url: str | None = None
    text: str | None = None
    file_id: str | None = None
    filename: str | None = None
    title: str | None = None
    context: str | None = None
    citations: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None
    where: str = ""


class ToolCallPart(msgspec.Struct, tag="tool_call", kw_only=True):
    """A tool call. `signature` is signed state riding on the call itself (Gemini's thoughtSignature
    on a functionCall part), replayed only to the upstream format named by `origin`."""

    id: str
    name: str
    arguments: str  # JSON text, exactly as produced
    cache_control: dict[str, Any] | None = None
    signature: str | None = None
    origin: str | None = None


class ToolResultPart(msgspec.Struct, tag="tool_result", kw_only=True):
    tool_call_id: str
    content: list[TextPart | ImagePart]
    is_error: bool = False
    cache_control: dict[str, Any] | None = None


class ThinkingPart(msgspec.Struct, tag="thinking", kw_only=True):
    """Reasoning text, or Anthropic's opaque `redacted_thinking` (then `redacted` holds its data).

    `signature`/`redacted` are signed state: replayed byte for byte, and only to the upstream
    format that issued them (`origin`, e.g. "anthropic"); translators for other formats drop them.
    Unsigned text (`origin` None: DeepSeek/Kimi `reasoning_content`) may be echoed to an
    OpenAI-format upstream that reasons. Which endpoint issued either is the gateway's to know
    (`routing.fit.SignatureIssuers`), so a fallback to another provider drops it.
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    origin: str | None = None


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart | DocumentPart


class Message(msgspec.Struct, kw_only=True):
    role: Role
    content: list[Part]
    name: str | None = None


class Tool(msgspec.Struct, kw_only=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    cache_control: dict[str, Any] | None = None


class ToolChoice(msgspec.Struct, kw_only=True):
    """`mode`: auto | none | required (Anthropic "any") | tool (then `name`)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None
    disable_parallel: bool = False


class Reasoning(msgspec.Struct, kw_only=True):
    """Reasoning request: OpenAI `reasoning_effort`/OpenRouter `reasoning` <-> Anthropic `thinking`.
    `exclude`: the caller wants no reasoning text in its answer (it is still produced and billed)."""

    effort: str | None = None
    budget_tokens: int | None = None
    enabled: bool = True
    exclude: bool = False

    @property
    def on(self) -> bool:
        """Whether reasoning is asked for (not merely configured off or hidden)."""
        return self.enabled and self.effort != "none"


class ChatRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[Message]
    system: list[TextPart] = msgspec.field(default_factory=list)
    tools: list[Tool] = msgspec.field(default_factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = msgspec.field(default_factory=list)
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    reasoning: Reasoning | None = None
    stream: bool = False
    include_usage: bool = False
    # Fields the translator did not model, kept verbatim so an upstream speaking the client's own
    # format (`source`) still gets them; translators for the other format ignore them.
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    source: ApiFormat = "openai"
    # Client state canonical has no general form for; like `extra`, replayed only to an upstream of
    # the client's own format. Anthropic server tools (run by the upstream itself) and a thinking
    # config `reasoning` cannot express (`adaptive`), both kept as the client sent them:
    server_tools: list[dict[str, Any]] = msgspec.field(default_factory=list)
    thinking_config: dict[str, Any] | None = None
    # What a Responses API answer repeats of its request (validated by its parser); no upstream reads it.
    echo: dict[str, Any] | None = None
    # Token log probabilities (OpenAI's `logprobs` / `top_logprobs`), and how many choices (`n`).
    logprobs: bool = False
    top_logprobs: int | None = None
    n: int = 1
    # Models to fall back to, in order, after `model` (OpenRouter's `models`; Messages `fallbacks`).
    fallback_models: list[str] = msgspec.field(default_factory=list)


class Usage(msgspec.Struct, kw_only=True):
    input_tokens: int = 0  # includes cache_read_tokens and cache_write_tokens
    output_tokens: int = 0  # includes reasoning_tokens
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # The part of cache_write_tokens written for one hour (Anthropic's `ttl: "1h"` breakpoints), billed
    # at its own price; the rest of the writes are 5-minute ones.
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0


class TokenLogprob(msgspec.Struct, kw_only=True):
    """One output token's log probability (OpenAI's shape); `top_logprobs` holds the alternatives
    (themselves without alternatives)."""

    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TokenLogprob] | None = None


class Choice(msgspec.Struct, kw_only=True):
    """An answer's second and later choices (`n` > 1); the first is the ChatResponse itself."""

    content: list[Part]
    stop_reason: StopReason | None
    logprobs: list[TokenLogprob] | None = None


class ChatResponse(msgspec.Struct, kw_only=True):
    id: str
    model: str
    content: list[Part]
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)  # of every choice: billed once, as the upstream bills it
    logprobs: list[TokenLogprob] | None = None  # of `content`'s tokens, when asked for
    system_fingerprint: str | None = None
    more_choices: list[Choice] = msgspec.field(default_factory=list)


# ---- stream events -------------------------------------------------------------------------


class Start(msgspec.Struct, tag="start", kw_only=True):
    """First event of every stream. `usage` carries input counts when the upstream gives them early."""

    id: str
    model: str
    usage: Usage | None = None
    system_fingerprint: str | None = None


class TextDelta(msgspec.Struct, tag="text_delta", kw_only=True):
    text: str


class ThinkingDelta(msgspec.Struct, tag="thinking_delta", kw_only=True):
    text: str


class SignatureDelta(msgspec.Struct, tag="signature_delta", kw_only=True):
    """Signed state of the thinking before it; `origin` is the provider kind whose decoder saw it
    (as on ThinkingPart): encoders decide from it whether, and how, the state may travel on."""

    signature: str
    origin: str | None = None


class RedactedThinking(msgspec.Struct, tag="redacted_thinking", kw_only=True):
    data: str
    origin: str | None = None  # as on SignatureDelta


class ToolCallStart(msgspec.Struct, tag="tool_call_start", kw_only=True):
    """A new tool call. `index` counts tool calls only (0, 1, 2...) across the whole response.
    `signature`/`origin`: signed state on the call, as on ToolCallPart."""

    index: int
    id: str
    name: str
    signature: str | None = None
    origin: str | None = None


class ToolCallDelta(msgspec.Struct, tag="tool_call_delta", kw_only=True):
    index: int
    arguments: str


class Finish(msgspec.Struct, tag="finish", kw_only=True):
    stop_reason: StopReason
    stop_sequence: str | None = None


class UsageUpdate(msgspec.Struct, tag="usage", kw_only=True):
    """Cumulative usage so far; the last one seen is the stream's usage."""

    usage: Usage


class LogprobsDelta(msgspec.Struct, tag="logprobs", kw_only=True):
    """Log probabilities of the tokens of the text delta that follows it."""

    content: list[TokenLogprob]


StreamEvent = (
    Start
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | RedactedThinking
    | ToolCallStart
    | ToolCallDelta
    | Finish
    | UsageUpdate
    | LogprobsDelta
)
