"""Canonical request -> a Gemini `generateContent` body (pure).

- Roles: assistant -> "model"; everything else is "user" (a mid-conversation system message is a user
  text turn: Gemini has one `systemInstruction` only). Turns of one role are merged, as Gemini expects
  user and model turns to alternate.
- Tool results are `functionResponse` parts, which need the function's NAME: it is looked up from the
  matching call earlier in the history. Images in a tool result follow it as `inlineData` parts.
- Tools are `functionDeclarations` with `parametersJsonSchema`, which takes JSON Schema as clients write
  it (`additionalProperties` included, unlike the OpenAPI-subset `parameters`); only `$schema` is
  dropped. A tool without parameters declares none. Structured output uses `responseJsonSchema` alike.
- Thought signatures (signed state whose origin is "gemini"; any other origin is never sent) go back
  where Gemini's rules put them: on the `functionCall` part they came with, on thought parts, or on the
  text part they closed. A signed thinking part right before a call without one (how clients that
  have no place for a call's signature carry it) gives the call its signature. For Gemini 3, which
  validates them, a step of the current turn (since the last user text) whose calls have no
  signature at all gets the documented placeholder that turns validation off, so a history from
  another model or provider still works.
- Reasoning becomes `thinkingConfig`: `thinkingLevel` for Gemini 3 models (3 Pro: low or high only;
  "off" is low, as Gemini 3 cannot stop thinking),
  `thinkingBudget` for 2.5
  (kept inside each model's documented range; 2.5 Pro cannot turn thinking off, so "off" is its least
  budget), with `includeThoughts` so the thought summaries come back.
- `n` > 1 is refused (the answer is read as one candidate; billing for choices never seen is not an
  option). What the body does not carry is listed by `dropped_fields` (the X-KeepRouter-Dropped
  header): `logprobs`, `top_logprobs`, `user`, `parallel_tool_calls`, Anthropic server tools and
  another format's own fields (`frequency_penalty`, `presence_penalty`, ...).
"""

from __future__ import annotations

from typing import Any

import orjson

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Reasoning,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

ORIGIN = "gemini"
SKIP_SIGNATURE = "skip_thought_signature_validator"  # Google's documented placeholder signature
# Effort -> Gemini 3 `thinkingLevel` and Gemini 2.5 `thinkingBudget` (tokens).
LEVELS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
# Gemini 3 Pro takes `low` and `high` only (ai.google.dev/gemini-api/docs/gemini-3, "Thinking level");
# another level is a 400. Medium rounds up to its default, high.
_PRO3_LEVELS = {"minimal": "low", "medium": "high"}
BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768, "max": 32768}
# Gemini 2.5's `thinkingBudget` bounds per model (ai.google.dev/gemini-api/docs/thinking, "Set
# budget"): (smallest budget, largest, whether 0 turns thinking off). Out of range is a 400; Pro
# cannot stop thinking. Most specific name first ("flash-lite" before "flash").
_BUDGET_BOUNDS = (
    ("gemini-2.5-pro", (128, 32768, False)),
    ("gemini-2.5-flash-lite", (512, 24576, True)),
    ("gemini-2.5-flash", (1, 24576, True)),
)
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
_REFUSED_SCHEMA_KEYS = ("$schema",)


def model_path(model: str) -> str:
    """`models/{model}` as the URL needs it (a model id written with its `models/` prefix is kept)."""
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def build_request(req: ChatRequest, model: str) -> dict[str, Any]:
    """Canonical -> the generateContent body for `model` (the upstream's own model id)."""
    if req.n > 1:
        raise InvalidRequest(
            "`n` greater than 1 is not supported by this model's provider (Gemini, read as one "
            "candidate): send n requests instead",
            param="n",
        )
    body: dict[str, Any] = {"contents": contents(req.messages, strict=is_gemini3(model))}
    system = [{"text": p.text} for p in req.system if p.text]
    if system:
        body["systemInstruction"] = {"parts": system}
    if req.tools:
        declarations = [_declaration(t.name, t.description, t.parameters) for t in req.tools]
        body["tools"] = [{"functionDeclarations": declarations}]
        if req.tool_choice is not None:
            fcc: dict[str, Any] = {"mode": _MODES[req.tool_choice.mode]}
            if req.tool_choice.mode == "tool" and req.tool_choice.name:
                fcc["allowedFunctionNames"] = [req.tool_choice.name]
            body["toolConfig"] = {"functionCallingConfig": fcc}
    config = _generation_config(req, model)
    if config:
        body["generationConfig"] = config
    return body


def count_body(req: ChatRequest, model: str) -> dict[str, Any]:
    """The `countTokens` body: the same request, wrapped, without sampling settings."""
    inner = build_request(req, model)
    inner.pop("generationConfig", None)
    return {"generateContentRequest": {"model": model_path(model), **inner}}


# ---- contents -------------------------------------------------------------------------------


def contents(messages: list[Message], *, strict: bool = False) -> list[dict[str, Any]]:
    """`strict`: the model validates signatures (Gemini 3), so unsigned current-turn steps get the
    placeholder."""
    names = {p.id: p.name for m in messages for p in m.content if isinstance(p, ToolCallPart)}
    out: list[dict[str, Any]] = []
    for m in messages:
        role = "model" if m.role == "assistant" else "user"
        parts = _model_parts(m) if role == "model" else _user_parts(m, names)
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    if strict:
        _fill_current_turn(out)
    return out


def _user_parts(m: Message, names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for p in m.content:
        if isinstance(p, TextPart):
            if p.text:
                parts.append({"text": p.text})
        elif isinstance(p, ImagePart):
            parts.append(image(p))
        elif isinstance(p, DocumentPart):
            parts.append(_document(p))
        elif isinstance(p, ToolResultPart):
            parts.extend(_function_response(p, names))
    return parts


def _document(p: DocumentPart) -> dict[str, Any]:
    """A document as a Gemini part: text as text, inline data as `inlineData`; a URL or a stored file
    id (another provider's) refused naming the part."""
    if p.text is not None:
        return {"text": p.text}
    if p.data is not None:
        return {"inlineData": {"mimeType": p.media_type or "application/pdf", "data": p.data}}
    raise InvalidRequest(
        f"`{p.where or 'document'}`: this model's provider (Gemini) takes documents inline (base64) only",
        param=p.where or None,
    )


def _function_response(p: ToolResultPart, names: dict[str, str]) -> list[dict[str, Any]]:
    name = names.get(p.tool_call_id)
    if name is None:
        raise InvalidRequest(f"tool result {p.tool_call_id!r} answers no tool call in the conversation")
    text = "".join(c.text for c in p.content if isinstance(c, TextPart))
    # Gemini reads `output` as the function's result and `error` as its failure.
    response = {"error" if p.is_error else "output": text}
    return [{"functionResponse": {"name": name, "response": response}}] + [
        image(c) for c in p.content if isinstance(c, ImagePart)
    ]


def _model_parts(m: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = m.content
    carried: str | None = None  # a signature carried by a thinking part, for the call right after it
    for i, p in enumerate(content):
        if isinstance(p, TextPart):
            if p.text:
                parts.append({"text": p.text})
        elif isinstance(p, ToolCallPart):
            part: dict[str, Any] = {"functionCall": {"name": p.name, "args": _args(p)}}
            sig = p.signature if p.origin == ORIGIN and p.signature else carried
            if sig:
                part["thoughtSignature"] = sig
            parts.append(part)
            carried = None
        elif isinstance(p, ThinkingPart):
            carried = None
            if p.origin != ORIGIN or not p.signature:
                continue  # unsigned thought summaries and other providers' state mean nothing to Gemini
            nxt = content[i + 1] if i + 1 < len(content) else None
            if isinstance(nxt, ToolCallPart) and not (nxt.origin == ORIGIN and nxt.signature):
                carried = p.signature
                if p.text:
                    parts.append({"text": p.text, "thought": True})
            elif p.text:
                parts.append({"text": p.text, "thought": True, "thoughtSignature": p.signature})
            elif parts and "text" in parts[-1] and "thought" not in parts[-1] and "thoughtSignature" not in parts[-1]:
                parts[-1]["thoughtSignature"] = p.signature  # the signature that closed this text
            else:
                parts.append({"text": "", "thoughtSignature": p.signature})
        elif isinstance(p, ImagePart):
            parts.append(image(p))
    return parts


def _fill_current_turn(out: list[dict[str, Any]]) -> None:
    """Gemini validates signatures in the current turn only (model steps since the last user text):
    a step with calls but no signature at all gets the placeholder on its first call."""
    for content in reversed(out):
        parts = content["parts"]
        if content["role"] == "user":
            if any("text" in p for p in parts):
                return
            continue
        calls = [p for p in parts if "functionCall" in p]
        if calls and not any("thoughtSignature" in p for p in calls):
            calls[0]["thoughtSignature"] = SKIP_SIGNATURE


def _args(p: ToolCallPart) -> dict[str, Any]:
    try:
        args = orjson.loads(p.arguments or "{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"tool call {p.id!r} has arguments that are not JSON") from None
    return args if isinstance(args, dict) else {"value": args}


def image(p: ImagePart) -> dict[str, Any]:
    url = p.url
    if url is not None and url.startswith("data:"):
        head, _, data = url.partition(",")
        mime = head[5:].split(";", 1)[0] or "image/png"
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url is not None:
        return {"fileData": {"mimeType": p.media_type or _mime_of(url), "fileUri": url}}
    return {"inlineData": {"mimeType": p.media_type or "image/png", "data": p.data or ""}}


def _mime_of(url: str) -> str:
    ext = url.split("?", 1)[0].rpartition(".")[2].lower()
    return {"png": "image/png", "gif": "image/gif", "webp": "image/webp"}.get(ext, "image/jpeg")


# ---- tools and generation settings ----------------------------------------------------------


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in _REFUSED_SCHEMA_KEYS}


def _declaration(name: str, description: str | None, parameters: dict[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name}
    if description:
        d["description"] = description
    if parameters and (parameters.get("properties") or parameters.get("type") != "object"):
        d["parametersJsonSchema"] = clean_schema(parameters)
    return d


def is_gemini3(model: str) -> bool:
    return "gemini-3" in model


def thinking_config(r: Reasoning, model: str, max_tokens: int | None) -> dict[str, Any] | None:
    """Reasoning -> `thinkingConfig`; None when the model is best left at its default."""
    off = not r.enabled or r.effort == "none"
    if is_gemini3(model):
        if off:  # Gemini 3 cannot stop thinking: its least level, which every Gemini 3 model takes
            return {"thinkingLevel": "low"}
        level = LEVELS.get(r.effort or "") or _level_of(r.budget_tokens)
        if "gemini-3-pro" in model:
            level = _PRO3_LEVELS.get(level, level)
        return {"thinkingLevel": level, "includeThoughts": True}
    low, high, can_stop = _budget_bounds(model)
    if off:  # a model that cannot stop thinking gets its least, its thoughts left out
        return {"thinkingBudget": 0 if can_stop else low}
    budget = r.budget_tokens or BUDGETS.get(r.effort or "medium", BUDGETS["medium"])
    if max_tokens is not None and budget >= max_tokens:
        budget = max_tokens // 2  # thoughts count against maxOutputTokens: leave room for the answer
    return {"thinkingBudget": min(max(budget, low), high), "includeThoughts": True}


def _budget_bounds(model: str) -> tuple[int, int, bool]:
    for name, bounds in _BUDGET_BOUNDS:
        if name in model:
            return bounds
    return 0, BUDGETS["max"], True  # another model: Gemini refuses what it refuses


def _level_of(budget: int | None) -> str:
    if budget is None:
        return "high"
    return "low" if budget <= 2048 else "medium" if budget <= 8192 else "high"


def _generation_config(req: ChatRequest, model: str) -> dict[str, Any]:
    g: dict[str, Any] = {}
    if req.max_tokens is not None:
        g["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        g["temperature"] = req.temperature
    if req.top_p is not None:
        g["topP"] = req.top_p
    if req.top_k is not None:
        g["topK"] = req.top_k
    if req.stop:
        g["stopSequences"] = req.stop
    if req.seed is not None:
        g["seed"] = req.seed
    rf = req.response_format
    if rf is not None and rf.get("type") in ("json_object", "json_schema"):
        g["responseMimeType"] = "application/json"
        spec = rf.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            g["responseJsonSchema"] = clean_schema(schema)
    if req.reasoning is not None:
        tc = thinking_config(req.reasoning, model, req.max_tokens)
        if tc is not None:
            g["thinkingConfig"] = tc
    return g


# Fields of another client format's body that need no field here: the automatic cache breakpoint
# (Gemini caches implicitly), the router's own `prompt_cache_key` (conversation affinity), and an
# Anthropic client's structured output (`response_format`, sent as responseJsonSchema).
_TRANSLATED_EXTRA = frozenset({"cache_control", "prompt_cache_key", "output_format"})


def dropped_fields(req: ChatRequest) -> list[str]:
    """The request fields (the client's names) `build_request` cannot send for `req`."""
    out = [k for k in req.extra if k[:1] != "_" and k not in _TRANSLATED_EXTRA and k != "output_config"]
    oc = req.extra.get("output_config")
    if isinstance(oc, dict):  # `format` is translated; `effort` too when it sets adaptive thinking's level
        kept = ("format", "effort") if req.thinking_config is not None else ("format",)
        out += [f"output_config.{k}" for k in oc if k not in kept]
    out += [f"tools[type={t.get('type')}]" for t in req.server_tools]
    anthropic = req.source == "anthropic"
    for name, present in (
        ("logprobs", req.logprobs),
        ("top_logprobs", req.top_logprobs is not None),
        ("metadata.user_id" if anthropic else "user", req.user is not None),
        (
            "tool_choice.disable_parallel_tool_use" if anthropic else "parallel_tool_calls",
            req.tool_choice is not None and req.tool_choice.disable_parallel,
        ),
    ):
        if present:
            out.append(name)
    return out
