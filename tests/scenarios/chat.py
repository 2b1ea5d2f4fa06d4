"""Client-API row: OpenAI Chat Completions through the official ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from .client_api import SDK_TIMEOUT, ClientApi, http_failure
from .neutral import Ask, Call, Failure, Msg, Result, error_shape


def _message(m: Msg) -> list[dict[str, Any]]:
    if m.role == "tool":
        return [{"role": "tool", "tool_call_id": call_id, "content": text} for call_id, text in m.results]
    if m.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": m.text or None}
        if m.calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.args)},
                 **(c.extra or {})}
                for c in m.calls
            ]  # fmt: skip
        if m.reasoning:  # sent back as OpenRouter's clients do
            out["reasoning_details"] = list(m.reasoning)
        return [out]
    if not m.images and not m.pdfs:
        return [{"role": "user", "content": m.text}]
    parts: list[dict[str, Any]] = [{"type": "text", "text": m.text}]
    parts += [{"type": "image_url", "image_url": {"url": i.data_url}} for i in m.images]
    parts += [{"type": "file", "file": {"filename": d.name, "file_data": d.data_url}} for d in m.pdfs]
    return [{"role": "user", "content": parts}]


def request(model: str, ask: Ask) -> dict[str, Any]:
    messages = [{"role": "system", "content": ask.system}] if ask.system is not None else []
    kw: dict[str, Any] = {"model": model, "messages": messages + [x for m in ask.messages for x in _message(m)]}
    if ask.tools:
        kw["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.schema}}
            for t in ask.tools
        ]
    if ask.tool_choice is not None:
        named = ask.tool_choice not in ("auto", "none", "required")
        kw["tool_choice"] = {"type": "function", "function": {"name": ask.tool_choice}} if named else ask.tool_choice
    if ask.max_tokens is not None:
        kw["max_tokens"] = ask.max_tokens
    if ask.stop:
        kw["stop"] = list(ask.stop)
    if ask.reasoning is not None:
        kw["extra_body"] = {"reasoning": {"effort": ask.reasoning}}
    return kw


def _extra(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """A call's `extra_content` (Gemini's thought signature rides there), to send back with it."""
    ec = (fields or {}).get("extra_content")
    return {"extra_content": ec} if ec else None


def _dropped(headers: Any) -> dict[str, str]:
    value = headers.get("x-keeprouter-dropped")
    return {"x-keeprouter-dropped": value} if value else {}


def _read(r: ChatCompletion, generation_id: str | None) -> Result:
    choice = r.choices[0]
    msg = choice.message
    cost = (r.usage.model_extra or {}).get("cost") if r.usage else None
    extra = msg.model_extra or {}
    return Result(
        thinking=extra.get("reasoning") or "",
        reasoning=list(extra.get("reasoning_details") or []),
        text=msg.content or "",
        calls=[
            Call(c.id, c.function.name, json.loads(c.function.arguments), _extra(c.model_extra))
            for c in msg.tool_calls or []
            if c.type == "function"
        ],
        finish=choice.finish_reason,
        input_tokens=r.usage.prompt_tokens if r.usage else None,
        output_tokens=r.usage.completion_tokens if r.usage else None,
        cost=cost,
        id=r.id,
        generation_id=generation_id,
    )


def connect(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=SDK_TIMEOUT)


async def send(client: openai.AsyncOpenAI, model: str, ask: Ask, stream: bool) -> Result:
    kw = request(model, ask)
    try:
        if not stream:
            raw = await client.chat.completions.with_raw_response.create(**kw)
            res = _read(raw.parse(), raw.headers.get("x-generation-id"))
            res.headers = _dropped(raw.headers)
            return res
        chunks = await client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw)
    except openai.APIStatusError as e:
        return Result(error=http_failure(e.response))
    headers = chunks.response.headers
    res = Result(generation_id=headers.get("x-generation-id"), headers=_dropped(headers))
    slots: dict[int, dict[str, str]] = {}
    extras: dict[int, dict[str, Any]] = {}
    finishes = 0
    try:
        async for chunk in chunks:
            res.id = chunk.id
            if chunk.usage:
                res.input_tokens, res.output_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                res.cost = (chunk.usage.model_extra or {}).get("cost")
            for c in chunk.choices:
                res.text += c.delta.content or ""
                extra = c.delta.model_extra or {}
                res.thinking += extra.get("reasoning") or ""
                res.reasoning += extra.get("reasoning_details") or []
                for tc in c.delta.tool_calls or []:
                    slot = slots.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                    if (extra := _extra(tc.model_extra)) is not None:
                        extras[tc.index] = extra
                    if tc.id:
                        assert not slot["id"], "tool call id repeated on a later fragment"
                        slot["id"] = tc.id
                    if tc.function:
                        slot["name"] += tc.function.name or ""
                        slot["args"] += tc.function.arguments or ""
                if c.finish_reason:
                    finishes += 1
                    res.finish = c.finish_reason
    except openai.APIError as e:
        # the SDK raises on a chunk with a top-level `error`, handing over that member
        res.error = Failure(status=None, shape=error_shape({"error": e.body}), message=e.message)
        return res
    assert finishes == 1, f"expected exactly one finish_reason chunk, got {finishes}"
    res.calls = [
        Call(s["id"], s["name"], json.loads(s["args"] or "{}"), extras.get(i)) for i, s in sorted(slots.items())
    ]
    return res


CHAT = ClientApi(
    name="chat",
    connect=connect,
    send=send,
    finish_words={"end": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"},
    id_prefix="gen-",
    reports_cost=True,
    error_shape="openai",
    stream_error_shape="openai",
    supports=frozenset({"stop", "image", "pdf"}),
)
