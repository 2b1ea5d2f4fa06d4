"""OpenAI Responses client bodies -> canonical (`parse_request`).

Decisions:
- Stored state is the route's (`api.stored_responses`): it prepends the conversation named by
  `previous_response_id` and replaces `item_reference` items with the stored items before this
  parser runs, so an `item_reference` reaching it is a 400; `previous_response_id` and `store`
  (default true, as OpenAI's) are only echoed. `conversation` and `background` are refused.
- Tools (function, custom, namespace; built-ins) are parsed by `tools`; a
  tool_choice naming a built-in tool is a 400. Calls passed back with a `namespace` are flattened
  to the name their tool went upstream under.
- `instructions` and system/developer messages before the first turn become `system`; later ones stay
  in place as canonical "system" messages. `function_call` and `reasoning` items join the assistant
  turn around them; consecutive `function_call_output` items become ONE user turn of tool results.
- Reasoning items passed back: signed thinking we issued comes back as `encrypted_content` (`seal`)
  and is replayed as it was (text = the summary, byte for byte) to the format that signed it; any
  other reasoning item keeps its summary as unsigned thinking, which no upstream replays (accepted,
  dropped). Someone else's `encrypted_content` (OpenAI's) is ignored.
- `text.format` json_schema / json_object -> canonical `response_format` (Chat Completions' shape).
- What the response must echo (tools, tool_choice, text, metadata, ...) is kept, validated, in
  `req.echo`; `extra` stays empty (no upstream speaks this format, so nothing is replayed verbatim).
"""

from __future__ import annotations

from typing import Any

import orjson

from keeprouter.clients.base import fallback_models
from keeprouter.clients.openai_responses.tools import flat_name, parse_tools
from keeprouter.clients.sealed import unseal
from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    inline_image_problem,
)
from keeprouter.formats.wire.openai import data_url_document

_NO_CONVERSATIONS = "is not supported (no Conversations API here): chain with `previous_response_id` instead"
_MODES = frozenset({"auto", "none", "required"})
_TEXT_TYPES = frozenset({"input_text", "output_text", "text"})


def _bad(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"`{field}` {problem}", param=field)


def _num(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(key, "must be a number")
    return float(v)


def _str(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key)
    if not isinstance(v, str):
        raise _bad(f"{where}.{key}", "must be a string")
    return v


def _image(p: dict[str, Any], where: str) -> ImagePart:
    url = p.get("image_url")
    detail = p.get("detail") if isinstance(p.get("detail"), str) else None
    if not isinstance(url, str) or not url:
        what = "`file_id` images (no file storage here)" if p.get("file_id") else "no image"
        raise _bad(f"{where}.image_url", f"must be an image URL or a data URL; {what} is not supported")
    if url[:5].lower() != "data:":
        return ImagePart(url=url, detail=detail)
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise _bad(f"{where}.image_url", "must be a base64 data URL (data:image/...;base64,...) or a URL")
    media_type = head[5:-7]
    if (problem := inline_image_problem(media_type, data)) is not None:
        raise _bad(f"{where}.image_url", problem)
    return ImagePart(media_type=media_type, data=data, detail=detail)


def _content(content: Any, where: str, *, images: bool, named: bool = False) -> list[TextPart | ImagePart]:
    """Text (and image) parts; `named`: `content` is one part, `where` already names it."""
    if isinstance(content, str):
        return [TextPart(text=content)]
    if not isinstance(content, list):
        raise _bad(where, "must be a string or a list of content parts")
    out: list[TextPart | ImagePart] = []
    for i, p in enumerate(content):
        t = p.get("type") if isinstance(p, dict) else None
        at = where if named else f"{where}[{i}]"
        if t in _TEXT_TYPES:
            out.append(TextPart(text=_str(p, "text", at)))
        elif t == "input_image" and images:
            out.append(_image(p, at))
        elif t == "refusal":
            continue
        else:
            raise _bad(f"{at}.type", f"has unsupported content part type {t!r}")
    return out


def _input_file(p: dict[str, Any], where: str) -> DocumentPart:
    """`input_file`: inline `file_data` (a base64 data URL, or bare base64 taken as a PDF), a
    `file_url`, or a stored `file_id`."""
    name = p.get("filename") if isinstance(p.get("filename"), str) else None
    data, url, fid = p.get("file_data"), p.get("file_url"), p.get("file_id")
    if isinstance(data, str) and data:
        if data[:5].lower() == "data:":
            return data_url_document(data, name, f"{where}.file_data")
        return DocumentPart(data=data, media_type="application/pdf", filename=name, where=f"{where}.file_data")
    if isinstance(url, str) and url:
        return DocumentPart(url=url, filename=name, where=f"{where}.file_url")
    if isinstance(fid, str) and fid:
        return DocumentPart(file_id=fid, filename=name, where=f"{where}.file_id")
    raise _bad(where, "must have `file_data`, `file_url` or `file_id`")


def _user_content(content: Any, where: str) -> list[Part]:
    """A user message's content: text, images and files."""
    if not isinstance(content, list):
        return [*_content(content, where, images=True)]
    out: list[Part] = []
    for i, p in enumerate(content):
        if isinstance(p, dict) and p.get("type") == "input_file":
            out.append(_input_file(p, f"{where}[{i}]"))
        else:
            out.extend(_content([p], f"{where}[{i}]", images=True, named=True))
    return out


def _called(item: dict[str, Any], where: str) -> str:
    """The called tool's name as it went upstream (a namespace member's flat name)."""
    name, ns = _str(item, "name", where), item.get("namespace")
    return flat_name(ns, name) if isinstance(ns, str) and ns else name


class _Turns:
    """Canonical messages being assembled from Responses items, merging the turns that belong together."""

    def __init__(self) -> None:
        self.system: list[TextPart] = []
        self.messages: list[Message] = []

    def _last(self, role: str) -> Message:
        if not self.messages or self.messages[-1].role != role:
            self.messages.append(Message(role=role, content=[]))  # type: ignore[arg-type]
        return self.messages[-1]

    def message(self, item: dict[str, Any], where: str) -> None:
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            parts = _content(content, f"{where}.content", images=False)
            if self.messages:
                self.messages.append(Message(role="system", content=[*parts]))
            else:
                self.system.extend(p for p in parts if isinstance(p, TextPart))
        elif role == "user":
            user = _user_content(content, f"{where}.content")
            self.messages.append(Message(role="user", content=user))
        elif role == "assistant":
            self._last("assistant").content.extend(_content(content, f"{where}.content", images=False))
        else:
            raise _bad(f"{where}.role", f"has unknown role {role!r}")

    def function_call(self, item: dict[str, Any], where: str) -> None:
        call_id, name = _str(item, "call_id", where), _called(item, where)
        args = item.get("arguments")
        if args is not None and not isinstance(args, str):
            raise _bad(f"{where}.arguments", "must be a string of JSON")
        self._last("assistant").content.append(ToolCallPart(id=call_id, name=name, arguments=args or ""))

    def custom_tool_call(self, item: dict[str, Any], where: str) -> None:
        call_id, name, text = _str(item, "call_id", where), _called(item, where), _str(item, "input", where)
        args = orjson.dumps({"input": text}).decode()
        self._last("assistant").content.append(ToolCallPart(id=call_id, name=name, arguments=args))

    def function_call_output(self, item: dict[str, Any], where: str) -> None:
        call_id = _str(item, "call_id", where)
        out = item.get("output")
        parts = [] if out is None else _content(out, f"{where}.output", images=True)
        last = self.messages[-1] if self.messages else None
        turn = last if last is not None and last.content and isinstance(last.content[-1], ToolResultPart) else None
        if turn is None:
            turn = Message(role="user", content=[])
            self.messages.append(turn)
        turn.content.append(ToolResultPart(tool_call_id=call_id, content=parts))

    def reasoning(self, item: dict[str, Any], where: str) -> None:
        summary = item.get("summary")
        if summary is not None and not isinstance(summary, list):
            raise _bad(f"{where}.summary", "must be a list")
        text = "".join(s["text"] for s in summary or [] if isinstance(s, dict) and isinstance(s.get("text"), str))
        blob = item.get("encrypted_content")
        part = unseal(text, blob) if isinstance(blob, str) else None
        if part is None and text:
            part = ThinkingPart(text=text)
        if part is not None:
            self._last("assistant").content.append(part)


def _input(raw: Any, turns: _Turns) -> None:
    if isinstance(raw, str):
        turns.messages.append(Message(role="user", content=[TextPart(text=raw)]))
        return
    if not isinstance(raw, list) or not raw:
        raise _bad("input", "is required: a string or a non-empty list of input items")
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, "must be an object")
        t = item.get("type", "message")
        if t == "message":
            turns.message(item, where)
        elif t == "function_call":
            turns.function_call(item, where)
        elif t == "custom_tool_call":
            turns.custom_tool_call(item, where)
        elif t in ("function_call_output", "custom_tool_call_output"):
            turns.function_call_output(item, where)
        elif t == "reasoning":
            turns.reasoning(item, where)
        elif t == "item_reference":
            raise _bad(f"{where}.type", "item_reference must name an item of a stored response")
        else:
            raise _bad(f"{where}.type", f"has unsupported item type {t!r}")


def _tool_choice(raw: Any) -> ToolChoice:
    if isinstance(raw, str) and raw in _MODES:
        return ToolChoice(mode=raw)  # type: ignore[arg-type]
    if isinstance(raw, dict) and raw.get("type") in ("function", "custom") and isinstance(raw.get("name"), str):
        return ToolChoice(mode="tool", name=_called(raw, "tool_choice"))
    raise _bad("tool_choice", 'must be "auto", "none", "required" or {"type": "function", "name": ...}')


def _format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise _bad("text", "must be an object")
    f = text.get("format")
    if f is None:
        return None
    kind = f.get("type") if isinstance(f, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        assert isinstance(f, dict)
        schema = f.get("schema")
        if not isinstance(schema, dict):
            raise _bad("text.format.schema", "must be an object (a JSON schema)")
        js: dict[str, Any] = {"name": _str(f, "name", "text.format"), "schema": schema}
        for k in ("description", "strict"):
            if f.get(k) is not None:
                js[k] = f[k]
        return {"type": "json_schema", "json_schema": js}
    raise _bad("text.format.type", 'must be "text", "json_object" or "json_schema"')


def _reasoning(raw: Any) -> Reasoning | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _bad("reasoning", "must be an object")
    effort = raw.get("effort")
    if effort is None:
        return None
    if not isinstance(effort, str):
        raise _bad("reasoning.effort", "must be a string")
    return Reasoning(effort=effort, enabled=effort != "none")


def parse_request(body: dict[str, Any]) -> ChatRequest:
    """A client's Responses body -> canonical (source "responses"); raises InvalidRequest."""
    if body.get("conversation") is not None:
        raise _bad("conversation", _NO_CONVERSATIONS)
    if body.get("background") is True:
        raise _bad("background", "is not supported: responses are answered while the request waits")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise _bad("previous_response_id", "must be a string")
    store = body.get("store")
    if store is not None and not isinstance(store, bool):
        raise _bad("store", "must be a boolean")
    model = body.get("model")
    if model is None and isinstance(body.get("models"), list) and body["models"]:
        model = body["models"][0]
    if not isinstance(model, str) or not model:
        raise _bad("model", "is required and must be a string")
    turns = _Turns()
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _bad("instructions", "must be a string")
        if instructions:
            turns.system.append(TextPart(text=instructions))
    _input(body.get("input"), turns)
    req = ChatRequest(model=model, messages=turns.messages, system=turns.system, source="responses")
    req.fallback_models = fallback_models(body, "models")
    tools = body.get("tools")
    if tools is not None:
        req.tools = parse_tools(tools)
    if (tc := body.get("tool_choice")) is not None:
        req.tool_choice = _tool_choice(tc)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise _bad("parallel_tool_calls", "must be a boolean")
    if parallel is False:
        req.tool_choice = req.tool_choice or ToolChoice(mode="auto")
        req.tool_choice.disable_parallel = True
    mot = body.get("max_output_tokens")
    if mot is not None and (isinstance(mot, bool) or not isinstance(mot, int) or mot < 1):
        raise _bad("max_output_tokens", "must be a positive integer")
    req.max_tokens = mot
    req.temperature = _num(body, "temperature")
    req.top_p = _num(body, "top_p")
    text = body.get("text")
    req.response_format = _format(text)
    reasoning = body.get("reasoning")
    req.reasoning = _reasoning(reasoning)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("user", "must be a string")
    req.user = user
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _bad("metadata", "must be an object of string values")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream", "must be a boolean")
    req.stream = stream is True
    text_echo = {**text, "format": text.get("format") or {"type": "text"}} if isinstance(text, dict) else None
    req.echo = {
        "instructions": instructions,
        "max_output_tokens": mot,
        "metadata": metadata or {},
        "parallel_tool_calls": parallel is not False,
        "previous_response_id": previous,
        "reasoning": {
            "effort": reasoning.get("effort") if isinstance(reasoning, dict) else None,
            "summary": reasoning.get("summary") if isinstance(reasoning, dict) else None,
        },
        "store": store is not False,
        "temperature": req.temperature,
        "text": text_echo or {"format": {"type": "text"}},
        "tool_choice": tc if tc is not None else "auto",
        "tools": tools or [],
        "top_p": req.top_p,
        "user": user,
    }
    return req
