"""Client-API row: Anthropic Messages through the official ``anthropic`` SDK."""

from __future__ import annotations

from typing import Any

import anthropic
from anthropic.types import Message

from .client_api import SDK_TIMEOUT, ClientApi, http_failure
from .neutral import Ask, Call, Failure, Msg, Pdf, Result, error_shape

DEFAULT_MAX_TOKENS = 256  # the API requires one


def _pdf_source(d: Pdf) -> dict[str, Any]:
    return {"type": "base64", "media_type": "application/pdf", "data": d.data}


def _message(m: Msg) -> dict[str, Any]:
    if m.role == "tool":
        results = [{"type": "tool_result", "tool_use_id": i, "content": text} for i, text in m.results]
        return {"role": "user", "content": results}
    if m.role == "assistant":
        blocks: list[dict[str, Any]] = list(m.reasoning)  # thinking blocks first, as they came
        blocks += [{"type": "text", "text": m.text}] if m.text else []
        blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.args} for c in m.calls]
        return {"role": "assistant", "content": blocks if m.calls or m.reasoning else m.text}
    if not m.images and not m.pdfs:
        return {"role": "user", "content": m.text}
    images = [
        {"type": "image", "source": {"type": "base64", "media_type": i.media_type, "data": i.data}} for i in m.images
    ]
    docs = [{"type": "document", "title": d.name, "source": _pdf_source(d)} for d in m.pdfs]
    return {"role": "user", "content": [{"type": "text", "text": m.text}, *images, *docs]}


def request(model: str, ask: Ask) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "model": model,
        "max_tokens": ask.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": [_message(m) for m in ask.messages],
    }
    if ask.system is not None:
        kw["system"] = ask.system
    if ask.tools:
        kw["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.schema} for t in ask.tools]
    if ask.tool_choice is not None:
        kinds = {"auto": "auto", "none": "none", "required": "any"}
        tc = ask.tool_choice
        kw["tool_choice"] = {"type": kinds[tc]} if tc in kinds else {"type": "tool", "name": tc}
    if ask.stop:
        kw["stop_sequences"] = list(ask.stop)
    if ask.reasoning is not None:
        kw["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    return kw


def _read(msg: Message, generation_id: str | None) -> Result:
    u = msg.usage
    return Result(
        thinking="".join(b.thinking for b in msg.content if b.type == "thinking"),
        reasoning=[b.model_dump() for b in msg.content if b.type in ("thinking", "redacted_thinking")],
        text="".join(b.text for b in msg.content if b.type == "text"),
        calls=[Call(b.id, b.name, b.input) for b in msg.content if b.type == "tool_use"],
        finish=msg.stop_reason,
        # Anthropic's input_tokens leaves out cache reads and writes: the neutral count has them all
        input_tokens=u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0),
        output_tokens=u.output_tokens,
        cost=(u.model_extra or {}).get("cost"),
        id=msg.id,
        generation_id=generation_id,
    )


def connect(url: str, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=SDK_TIMEOUT)


async def send(client: anthropic.AsyncAnthropic, model: str, ask: Ask, stream: bool) -> Result:
    kw = request(model, ask)
    if not stream:
        try:
            raw = await client.messages.with_raw_response.create(**kw)
        except anthropic.APIStatusError as e:
            return Result(error=http_failure(e.response))
        res = _read(await raw.parse(), raw.headers.get("x-generation-id"))
        dropped = raw.headers.get("x-keeprouter-dropped")
        res.headers = {"x-keeprouter-dropped": dropped} if dropped else {}
        return res
    try:
        async with client.messages.stream(**kw) as s:
            generation_id = s.response.headers.get("x-generation-id")
            dropped = s.response.headers.get("x-keeprouter-dropped")
            text = ""
            cost = None
            try:
                async for event in s:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        text += event.delta.text
                    elif event.type == "message_delta":  # the SDK's final message keeps no usage extras
                        cost = (event.usage.model_extra or {}).get("cost")
            except anthropic.APIStatusError as e:
                # an `event: error` inside the 200 stream; the SDK raises with its JSON
                failure = Failure(status=None, shape=error_shape(e.body), message=e.message)
                return Result(text=text, generation_id=generation_id, error=failure)
            final = await s.get_final_message()
    except anthropic.APIStatusError as e:
        return Result(error=http_failure(e.response))
    res = _read(final, generation_id)
    res.cost = cost
    res.headers = {"x-keeprouter-dropped": dropped} if dropped else {}
    assert res.text == text, "the stream's text deltas differ from the assembled message"
    return res


MESSAGES = ClientApi(
    name="messages",
    connect=connect,
    send=send,
    finish_words={
        "end": "end_turn",
        "stop_sequence": "stop_sequence",
        "max_tokens": "max_tokens",
        "tool_use": "tool_use",
    },
    id_prefix="gen-",
    reports_cost=True,
    error_shape="anthropic",
    stream_error_shape="anthropic",
    supports=frozenset({"stop", "image", "pdf"}),
)
