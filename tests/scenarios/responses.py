"""Client-API row: OpenAI Responses through the official ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
from openai.types.responses import Response

from .client_api import SDK_TIMEOUT, ClientApi, http_failure
from .neutral import Ask, Call, Failure, Msg, Result

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _items(m: Msg) -> list[dict[str, Any]]:
    if m.role == "tool":
        return [{"type": "function_call_output", "call_id": i, "output": text} for i, text in m.results]
    if m.role == "assistant":
        out: list[dict[str, Any]] = list(m.reasoning)  # reasoning items first, as they came
        if m.text:
            out.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": m.text}]})
        out += [
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": json.dumps(c.args)} for c in m.calls
        ]
        return out
    if not m.images and not m.pdfs:
        return [{"role": "user", "content": m.text}]
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": m.text}]
    parts += [{"type": "input_image", "image_url": i.data_url} for i in m.images]
    parts += [{"type": "input_file", "filename": d.name, "file_data": d.data_url} for d in m.pdfs]
    return [{"role": "user", "content": parts}]


def request(model: str, ask: Ask) -> dict[str, Any]:
    assert not ask.stop, "the Responses API has no stop sequences"
    kw: dict[str, Any] = {"model": model, "input": [x for m in ask.messages for x in _items(m)]}
    if ask.system is not None:
        kw["instructions"] = ask.system
    if ask.tools:
        kw["tools"] = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.schema}
            for t in ask.tools
        ]
    if ask.tool_choice is not None:
        named = ask.tool_choice not in ("auto", "none", "required")
        kw["tool_choice"] = {"type": "function", "name": ask.tool_choice} if named else ask.tool_choice
    if ask.max_tokens is not None:
        kw["max_output_tokens"] = ask.max_tokens
    if ask.reasoning is not None:
        kw["reasoning"] = {"effort": ask.reasoning, "summary": "auto"}
        kw["include"] = ["reasoning.encrypted_content"]
    return kw


def _read(r: Response, generation_id: str | None) -> Result:
    u = r.usage
    items = [o for o in r.output if o.type == "reasoning"]
    return Result(
        thinking="".join(s.text for o in items for s in o.summary),
        reasoning=[o.model_dump(exclude_none=True) for o in items],
        text=r.output_text,
        calls=[Call(o.call_id, o.name, json.loads(o.arguments)) for o in r.output if o.type == "function_call"],
        finish=r.status,
        input_tokens=u.input_tokens if u else None,
        output_tokens=u.output_tokens if u else None,
        cost=(u.model_extra or {}).get("cost") if u else None,
        id=r.id,
        generation_id=generation_id,
    )


def connect(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=SDK_TIMEOUT)


async def send(client: openai.AsyncOpenAI, model: str, ask: Ask, stream: bool) -> Result:
    kw = request(model, ask)
    try:
        if not stream:
            raw = await client.responses.with_raw_response.create(**kw)
            res = _read(raw.parse(), raw.headers.get("x-generation-id"))
            dropped = raw.headers.get("x-keeprouter-dropped")
            res.headers = {"x-keeprouter-dropped": dropped} if dropped else {}
            return res
        events_stream = await client.responses.create(stream=True, **kw)
    except openai.APIStatusError as e:
        return Result(error=http_failure(e.response))
    generation_id = events_stream.response.headers.get("x-generation-id")
    events = [ev async for ev in events_stream]
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    assert [ev.type for ev in events[:2]] == ["response.created", "response.in_progress"]
    last = events[-1]
    assert last.type in TERMINAL, last.type
    res = _read(last.response, generation_id)
    dropped = events_stream.response.headers.get("x-keeprouter-dropped")
    res.headers = {"x-keeprouter-dropped": dropped} if dropped else {}
    deltas = "".join(ev.delta for ev in events if ev.type == "response.output_text.delta")
    assert deltas == res.text, "the stream's text deltas differ from the final response"
    if last.type == "response.failed":
        error = last.response.error
        assert error is not None and error.message, "response.failed without an error"
        res.error = Failure(status=None, shape="response.failed", message=error.message)
    return res


RESPONSES = ClientApi(
    name="responses",
    connect=connect,
    send=send,
    finish_words={"end": "completed", "max_tokens": "incomplete", "tool_use": "completed"},
    id_prefix="resp_",
    reports_cost=True,
    error_shape="openai",
    stream_error_shape="response.failed",
    supports=frozenset({"image", "pdf"}),
)
