"""Drive the gateway with the official SDKs and normalise what they return, so one scenario can be
asserted identically for OpenAI and Anthropic callers, streamed or not."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai

OPENAI_STOP = {"stop": "end", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
ANTHROPIC_STOP = {
    "end_turn": "end",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "stop_sequence": "stop_sequence",
    "refusal": "refusal",
}


@dataclass
class Result:
    text: str = ""
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, name, parsed args)
    stop: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    id: str | None = None
    raw: Any = None


def openai_client(base: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=20)


def anthropic_client(base: str, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base, api_key=key, max_retries=0, timeout=20)


async def call_openai(client: openai.AsyncOpenAI, stream: bool, **kw: Any) -> Result:
    if not stream:
        r = await client.chat.completions.create(stream=False, **kw)
        msg = r.choices[0].message
        calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in (msg.tool_calls or [])]
        return Result(
            text=msg.content or "",
            tool_calls=calls,
            stop=OPENAI_STOP.get(r.choices[0].finish_reason, r.choices[0].finish_reason),
            input_tokens=r.usage.prompt_tokens if r.usage else None,
            output_tokens=r.usage.completion_tokens if r.usage else None,
            id=r.id,
            raw=r,
        )
    res = Result(raw=[])
    slots: dict[int, dict[str, str]] = {}  # tool-call fragments by index
    finishes = 0
    s = await client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw)
    async for chunk in s:
        res.raw.append(chunk)
        res.id = chunk.id
        if chunk.usage:
            res.input_tokens = chunk.usage.prompt_tokens
            res.output_tokens = chunk.usage.completion_tokens
        for choice in chunk.choices:
            d = choice.delta
            if d.content:
                res.text += d.content
            for tc in d.tool_calls or []:
                slot = slots.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                if tc.id:
                    assert not slot["id"], "tool call id repeated on a later fragment"
                    slot["id"] = tc.id
                if tc.function and tc.function.name:
                    slot["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    slot["args"] += tc.function.arguments
            if choice.finish_reason:
                finishes += 1
                res.stop = OPENAI_STOP.get(choice.finish_reason, choice.finish_reason)
    assert finishes == 1, f"expected exactly one finish_reason chunk, got {finishes}"
    res.tool_calls = [(c["id"], c["name"], json.loads(c["args"] or "{}")) for _, c in sorted(slots.items())]
    return res


async def call_anthropic(client: anthropic.AsyncAnthropic, stream: bool, **kw: Any) -> Result:
    kw.setdefault("max_tokens", 256)
    if stream:
        async with client.messages.stream(**kw) as s:
            events = [ev async for ev in s]
            msg = await s.get_final_message()
        raw: Any = events
    else:
        msg = await client.messages.create(**kw)
        raw = msg
    res = Result(id=msg.id, raw=raw, stop=ANTHROPIC_STOP.get(msg.stop_reason or "", msg.stop_reason))
    for block in msg.content:
        if block.type == "text":
            res.text += block.text
        elif block.type == "tool_use":
            res.tool_calls.append((block.id, block.name, block.input))
    res.input_tokens = (
        msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0) + (msg.usage.cache_creation_input_tokens or 0)
    )
    res.output_tokens = msg.usage.output_tokens
    return res
