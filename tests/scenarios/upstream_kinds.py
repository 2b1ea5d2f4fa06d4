"""Upstream-kind rows: one per emulated provider kind in tests/upstreams.

A row says how to start its emulator, the provider block of the gateway config that points at it,
and how to read the generation request the emulator recorded into a neutral ``Sent``. Where kinds
legitimately differ, the difference is a field here, never an ``if`` in a scenario.

A new upstream kind joins every scenario by adding its emulator and one row to ``UPSTREAM_KINDS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from upstreams.anthropic_server import AnthropicUpstream
from upstreams.azure_server import AzureUpstream
from upstreams.base import EmulatedUpstream, Received
from upstreams.bedrock_server import ACCESS_KEY, REGION, SECRET_KEY, BedrockUpstream
from upstreams.gemini_server import GeminiUpstream, model_of
from upstreams.openai_server import OpenAIUpstream
from upstreams.vertex_server import VertexUpstream

from .neutral import Call, Image, Msg, Pdf, Sent, Tool, text_of


@dataclass(frozen=True)
class UpstreamKind:
    name: str
    emulator: Callable[[], EmulatedUpstream]  # not yet started; enter it as an async context manager
    api: str  # the provider's `api` in the gateway config
    api_key: str | None  # the key its emulator expects (None: the kind signs with `options` instead)
    # where its generation requests arrive (other recorded requests are not read): one path, or one
    # for whole answers and one for streams
    generation_paths: tuple[str, ...]
    read: Callable[[Received], Sent]  # a recorded generation request -> neutral
    stream_extras: dict[str, Any] = field(default_factory=dict)  # body members a streamed request must carry
    # whether its answer says a stop sequence (not just "the end") stopped it
    reports_stop_sequence: bool = True
    # whether its usage counts the tokens written to its prompt cache apart (Gemini's implicit
    # caching writes nothing billable: those tokens are plain input)
    reports_cache_writes: bool = True
    # whether its wire carries tool call ids; without them a result names the function it answers
    # (Gemini's functionResponse), and the reader gives calls an empty id
    call_ids: bool = True
    # whether its wire can say "call no tool"; without it (Converse) the gateway leaves the tools out
    says_no_tools: bool = True
    # whether its wire carries a document's name (Gemini's inline data has none: the reader gives "")
    document_names: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # the kind's own provider keys
    # its emulator reasons and enforces the provider's rule for sending reasoning back
    reasons: bool = False
    # its usage counts reasoning tokens apart (Anthropic's counts them only within output_tokens)
    reports_reasoning_tokens: bool = True
    model: str | None = None  # the upstream's model name (default `up-<name>`), where the name matters
    # whether a generation request carried back exactly the signed state the emulator issued, for a
    # rule that admits a stand-in (Gemini 3 takes Google's placeholder signature): elsewhere the
    # emulator refusing anything else is the proof
    replayed_exactly: Callable[[EmulatedUpstream, Received], bool] = lambda emulator, rec: True

    def provider(self, emulator: EmulatedUpstream) -> dict[str, Any]:
        """The provider block of the gateway config for this emulator."""
        key = {} if self.api_key is None else {"api_key": self.api_key}
        return {"api": self.api, "base_url": emulator.url, **key, **self.options}

    def as_sent(self, messages: Sequence[Msg]) -> list[Msg]:
        """`messages` as this kind's wire can carry them, to compare with what its reader read."""
        if self.call_ids:
            return list(messages)
        names = {c.id: c.name for m in messages for c in m.calls}
        return [
            replace(
                m,
                calls=tuple(replace(c, id="") for c in m.calls),
                results=tuple((names[cid], text) for cid, text in m.results),
            )
            for m in messages
        ]

    @property
    def upstream_model(self) -> str:
        """The model name the gateway sends upstream."""
        return self.model or f"up-{self.name}"


# ---- the OpenAI Chat Completions wire --------------------------------------------------------------


def _openai_image(part: dict[str, Any]) -> Image:
    url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
    head, _, data = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), url[:40]
    return Image(head[len("data:") : -len(";base64")], data)


def _openai_user(content: Any) -> Msg:
    parts = content if isinstance(content, list) else []
    images = tuple(_openai_image(p) for p in parts if p.get("type") == "image_url")
    pdfs = tuple(_openai_pdf(p["file"]) for p in parts if p.get("type") == "file")
    return Msg("user", text_of(content), images=images, pdfs=pdfs)


def _openai_pdf(file: dict[str, Any]) -> Pdf:
    head, _, data = file["file_data"].partition(",")
    assert head == "data:application/pdf;base64", head
    return Pdf(data, file["filename"])


def read_openai(body: dict[str, Any]) -> Sent:
    system: list[str] = []
    messages: list[Msg] = []
    for m in body["messages"]:
        role = m["role"]
        if role in ("system", "developer"):
            assert not messages, "a system message after the conversation began"
            system.append(text_of(m["content"]))
        elif role == "user":
            messages.append(_openai_user(m["content"]))
        elif role == "assistant":
            calls = tuple(
                Call(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                for c in m.get("tool_calls") or []
            )
            messages.append(Msg("assistant", text_of(m.get("content")), calls=calls))
        else:
            assert role == "tool", role
            result = (m["tool_call_id"], text_of(m["content"]))
            if messages and messages[-1].role == "tool":
                messages[-1] = Msg("tool", results=(*messages[-1].results, result))
            else:
                messages.append(Msg("tool", results=(result,)))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        choice = choice["function"]["name"]
    stop = body.get("stop") or []
    return Sent(
        model=body["model"],
        system="\n".join(system) if system else None,
        messages=messages,
        tools=[
            Tool(t["function"]["name"], t["function"].get("description", ""), t["function"]["parameters"])
            for t in body.get("tools") or []
        ],
        tool_choice=choice,
        max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
        stop=[stop] if isinstance(stop, str) else list(stop),
        stream=body.get("stream") is True,
        body=body,
    )


# ---- the Anthropic Messages wire ---------------------------------------------------------------------

ANTHROPIC_CHOICE = {"auto": "auto", "none": "none", "any": "required"}


def _anthropic_turns(m: dict[str, Any]) -> list[Msg]:
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]
    )
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    if m["role"] == "assistant":
        calls = tuple(Call(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use")
        return [Msg("assistant", text, calls=calls)]
    assert m["role"] == "user", m["role"]
    results = tuple((b["tool_use_id"], text_of(b["content"])) for b in blocks if b["type"] == "tool_result")
    images = tuple(Image(b["source"]["media_type"], b["source"]["data"]) for b in blocks if b["type"] == "image")
    pdfs = tuple(_anthropic_pdf(b) for b in blocks if b["type"] == "document")
    turns = [Msg("tool", results=results)] if results else []
    if text or images or pdfs or not results:
        turns.append(Msg("user", text, images=images, pdfs=pdfs))
    return turns


def _anthropic_pdf(block: dict[str, Any]) -> Pdf:
    src = block["source"]
    assert (src["type"], src["media_type"]) == ("base64", "application/pdf"), src
    return Pdf(src["data"], block["title"])


def read_anthropic(body: dict[str, Any]) -> Sent:
    system = body.get("system")
    choice = body.get("tool_choice")
    return Sent(
        model=body["model"],
        system=text_of(system) if system is not None else None,
        messages=[turn for m in body["messages"] for turn in _anthropic_turns(m)],
        tools=[Tool(t["name"], t.get("description", ""), t["input_schema"]) for t in body.get("tools") or []],
        tool_choice=None if choice is None else ANTHROPIC_CHOICE.get(choice["type"], choice.get("name")),
        max_tokens=body.get("max_tokens"),
        stop=list(body.get("stop_sequences") or []),
        stream=body.get("stream") is True,
        body=body,
    )


# ---- Gemini's native API ----------------------------------------------------------------------------

GEMINI_CHOICE = {"AUTO": "auto", "NONE": "none", "ANY": "required"}


def _gemini_turns(c: dict[str, Any]) -> list[Msg]:
    parts: list[dict[str, Any]] = c["parts"]
    text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
    if c["role"] == "model":
        calls = tuple(
            Call("", p["functionCall"]["name"], p["functionCall"]["args"]) for p in parts if "functionCall" in p
        )
        return [Msg("assistant", text, calls=calls)]
    assert c["role"] == "user", c["role"]
    results = tuple(
        (p["functionResponse"]["name"], text_of(p["functionResponse"]["response"]["output"]))
        for p in parts
        if "functionResponse" in p
    )
    inline = [p["inlineData"] for p in parts if "inlineData" in p]
    images = tuple(Image(d["mimeType"], d["data"]) for d in inline if d["mimeType"] != "application/pdf")
    pdfs = tuple(Pdf(d["data"], "") for d in inline if d["mimeType"] == "application/pdf")
    turns = [Msg("tool", results=results)] if results else []
    if text or images or pdfs or not results:
        turns.append(Msg("user", text, images=images, pdfs=pdfs))
    return turns


def read_gemini(rec: Received) -> Sent:
    body = rec.body
    system = body.get("systemInstruction")
    config = body.get("generationConfig") or {}
    fcc = (body.get("toolConfig") or {}).get("functionCallingConfig")
    choice = None
    if fcc is not None:
        allowed = fcc.get("allowedFunctionNames") or []
        choice = allowed[0] if len(allowed) == 1 else GEMINI_CHOICE[fcc["mode"]]
    return Sent(
        model=model_of(rec),
        system="".join(p["text"] for p in system["parts"]) if system is not None else None,
        messages=[turn for c in body["contents"] for turn in _gemini_turns(c)],
        tools=[
            Tool(d["name"], d.get("description", ""), d.get("parametersJsonSchema", {}))
            for t in body.get("tools") or []
            for d in t.get("functionDeclarations") or []
        ],
        tool_choice=choice,
        max_tokens=config.get("maxOutputTokens"),
        stop=list(config.get("stopSequences") or []),
        stream=rec.path.endswith(":streamGenerateContent"),
        body=body,
    )


def gemini_signed_exactly(emulator: EmulatedUpstream, rec: Received) -> bool:
    """Every function call sent back carries the signature this Gemini emulator issued for it."""
    assert isinstance(emulator, GeminiUpstream)
    calls = [p for c in rec.body["contents"] if c["role"] == "model" for p in c["parts"] if "functionCall" in p]
    return bool(calls) and all(emulator.signed_by_me(p) for p in calls)


# ---- Vertex AI: Gemini's wire and Anthropic's at Vertex's paths, behind a service account ------------

VERTEX_PATH = "/v1/projects/test-project/locations/us-east5/publishers"


@dataclass(frozen=True)
class VertexKind(UpstreamKind):
    """Vertex authenticates with a service account's key file (its token_uri is the emulator), not an
    api_key; the family is picked by the upstream model's name, so a Claude row names a `claude-` one."""

    def provider(self, emulator: EmulatedUpstream) -> dict[str, Any]:
        assert isinstance(emulator, VertexUpstream)
        return {"api": self.api, "base_url": emulator.url, "project": emulator.project,
                "location": emulator.location, "credentials": emulator.key_file()}  # fmt: skip


def read_vertex_claude(rec: Received) -> Sent:
    """The Messages body without `model` (the path names it) and with Vertex's `anthropic_version`."""
    assert "model" not in rec.body and rec.body["anthropic_version"] == "vertex-2023-10-16"
    return replace(read_anthropic({**rec.body, "model": model_of(rec)}), body=rec.body)


# ---- AWS Bedrock Converse --------------------------------------------------------------------------

BEDROCK_MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def _bedrock_image(block: dict[str, Any]) -> Image:
    return Image(BEDROCK_MEDIA[block["format"]], block["source"]["bytes"])


def _bedrock_turns(m: dict[str, Any]) -> list[Msg]:
    blocks: list[dict[str, Any]] = m["content"]
    text = "".join(b["text"] for b in blocks if "text" in b)
    if m["role"] == "assistant":
        calls = tuple(
            Call(b["toolUse"]["toolUseId"], b["toolUse"]["name"], b["toolUse"]["input"])
            for b in blocks
            if "toolUse" in b
        )
        return [Msg("assistant", text, calls=calls)]
    assert m["role"] == "user", m["role"]
    results = tuple(
        (b["toolResult"]["toolUseId"], text_of(b["toolResult"]["content"])) for b in blocks if "toolResult" in b
    )
    images = tuple(_bedrock_image(b["image"]) for b in blocks if "image" in b)
    # Converse's document `name` is a label of restricted characters, not the file's name: read as ""
    pdfs = tuple(Pdf(b["document"]["source"]["bytes"], "") for b in blocks if "document" in b)
    turns = [Msg("tool", results=results)] if results else []
    if text or images or pdfs or not results:
        turns.append(Msg("user", text, images=images, pdfs=pdfs))
    return turns


def _bedrock_choice(choice: dict[str, Any] | None) -> str | None:
    if choice is None:
        return None
    if "tool" in choice:
        return str(choice["tool"]["name"])
    return "required" if "any" in choice else "auto"


def read_bedrock(rec: Received) -> Sent:
    body = rec.body
    model, _, action = rec.path.removeprefix("/model/").rpartition("/")
    system = [b["text"] for b in body.get("system") or [] if "text" in b]
    config = body.get("inferenceConfig") or {}
    tool_config = body.get("toolConfig") or {}
    return Sent(
        model=model,
        system="".join(system) if system else None,
        messages=[turn for m in body["messages"] for turn in _bedrock_turns(m)],
        tools=[
            Tool(s["name"], s.get("description", ""), s["inputSchema"]["json"])
            for t in tool_config.get("tools") or []
            if (s := t.get("toolSpec")) is not None
        ],
        tool_choice=_bedrock_choice(tool_config.get("toolChoice")),
        max_tokens=config.get("maxTokens"),
        stop=list(config.get("stopSequences") or []),
        stream=action == "converse-stream",
        body=body,
    )


BEDROCK_CLAUDE = "anthropic.claude-up"  # a Claude model id, so the gateway sends Claude's knobs
GEMINI_3 = "gemini-3-up"  # a Gemini 3 name: its emulator signs function calls and verifies them


UPSTREAM_KINDS: tuple[UpstreamKind, ...] = (
    UpstreamKind(
        name="openai",
        emulator=OpenAIUpstream,
        api="openai",
        api_key=OpenAIUpstream.DEFAULT_KEY,
        generation_paths=("/v1/chat/completions",),
        read=lambda rec: read_openai(rec.body),
        stream_extras={"stream_options": {"include_usage": True}},
        reports_stop_sequence=False,  # finish_reason "stop" for a stop sequence and for the end alike
    ),
    UpstreamKind(
        name="anthropic",
        emulator=lambda: AnthropicUpstream(verify_thinking=True),
        api="anthropic",
        api_key=AnthropicUpstream.DEFAULT_KEY,
        generation_paths=("/v1/messages",),
        read=lambda rec: read_anthropic(rec.body),
        reasons=True,
        reports_reasoning_tokens=False,
    ),
    UpstreamKind(  # the OpenAI wire in DeepSeek's thinking mode: reasoning_content back on tool-call turns
        name="deepseek",
        emulator=lambda: OpenAIUpstream(thinking_mode=True),
        api="openai",
        api_key=OpenAIUpstream.DEFAULT_KEY,
        generation_paths=("/v1/chat/completions",),
        read=lambda rec: read_openai(rec.body),
        stream_extras={"stream_options": {"include_usage": True}},
        reports_stop_sequence=False,
        reasons=True,
    ),
    UpstreamKind(  # the OpenAI wire at Azure's deployments API, with its filter chunks in every stream
        name="azure",
        emulator=lambda: AzureUpstream(deployments={"up-azure": "gpt-4o-2024-11-20"}, async_filter=True),
        api="azure",
        api_key=AzureUpstream.DEFAULT_KEY,
        generation_paths=("/openai/deployments/up-azure/chat/completions",),
        read=lambda rec: read_openai(rec.body),
        stream_extras={"stream_options": {"include_usage": True}},
        reports_stop_sequence=False,
        options={"api_version": "2024-10-21"},
    ),
    UpstreamKind(  # Gemini's native API: the model and whether it streams are in the path
        name="gemini",
        emulator=GeminiUpstream,
        api="gemini",
        api_key=GeminiUpstream.DEFAULT_KEY,
        generation_paths=(
            "/v1beta/models/up-gemini:generateContent",
            "/v1beta/models/up-gemini:streamGenerateContent",
        ),
        read=read_gemini,
        reports_stop_sequence=False,  # finishReason "STOP" for a stop sequence and for the end alike
        reports_cache_writes=False,
        call_ids=False,  # calls carry no id; a functionResponse names its function
        document_names=False,
    ),
    VertexKind(  # Gemini models on Vertex: the Gemini row's wire at the project's publisher path
        name="vertex",
        emulator=VertexUpstream,
        api="vertex",
        api_key="",
        generation_paths=(
            f"{VERTEX_PATH}/google/models/up-vertex:generateContent",
            f"{VERTEX_PATH}/google/models/up-vertex:streamGenerateContent",
        ),
        read=read_gemini,
        reports_stop_sequence=False,
        reports_cache_writes=False,
        call_ids=False,
        document_names=False,  # Gemini's inline data carries no file name
    ),
    VertexKind(  # Claude models on Vertex: rawPredict / streamRawPredict
        name="vertex-claude",
        emulator=lambda: VertexUpstream(verify_thinking=True),
        api="vertex",
        api_key="",
        generation_paths=(
            f"{VERTEX_PATH}/anthropic/models/claude-up@1:rawPredict",
            f"{VERTEX_PATH}/anthropic/models/claude-up@1:streamRawPredict",
        ),
        read=read_vertex_claude,
        stream_extras={"stream": True},
        reasons=True,  # its emulator verifies signed thinking as the anthropic row's does
        reports_reasoning_tokens=False,
        model="claude-up@1",
    ),
    UpstreamKind(  # Converse with SigV4: the model and whether it streams are in the path
        name="bedrock",
        emulator=BedrockUpstream,
        api="bedrock",
        api_key=None,  # signed with the emulator's test access key, as AWS checks it
        generation_paths=("/model/up-bedrock/converse", "/model/up-bedrock/converse-stream"),
        read=read_bedrock,
        says_no_tools=False,  # Converse has no "none" tool choice
        document_names=False,
        options={"region": REGION, "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY},
    ),
    UpstreamKind(  # Claude on Converse: thinking in additionalModelRequestFields, signed reasoningContent
        name="bedrock-claude",
        emulator=lambda: BedrockUpstream(verify_thinking=True),
        api="bedrock",
        api_key=None,
        generation_paths=(f"/model/{BEDROCK_CLAUDE}/converse", f"/model/{BEDROCK_CLAUDE}/converse-stream"),
        read=read_bedrock,
        says_no_tools=False,
        document_names=False,
        options={"region": REGION, "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY},
        reasons=True,
        reports_reasoning_tokens=False,  # Converse's usage has no reasoning count
        model=BEDROCK_CLAUDE,
    ),
    UpstreamKind(  # Gemini 3 on its native API: thought signatures on function calls, verified
        name="gemini-3",
        emulator=GeminiUpstream,
        api="gemini",
        api_key=GeminiUpstream.DEFAULT_KEY,
        generation_paths=(
            f"/v1beta/models/{GEMINI_3}:generateContent",
            f"/v1beta/models/{GEMINI_3}:streamGenerateContent",
        ),
        read=read_gemini,
        reports_stop_sequence=False,
        reports_cache_writes=False,
        call_ids=False,
        document_names=False,
        reasons=True,
        model=GEMINI_3,
        replayed_exactly=gemini_signed_exactly,
    ),
)
