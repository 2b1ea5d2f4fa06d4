"""Raw HTTP calls to a gateway (aiohttp, no SDK) for the billing, keys and durability tests.

`chat()` sends one chat request through either client API, streamed or not, and returns what the
client saw: HTTP status, the generation id (body id and X-Generation-Id header), whether the final
event arrived, the error body. Money is parsed from JSON as exact `Decimal` (the number's own
digits), never summed as floats.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

from keeprouter.config import Pricing

ANTHROPIC_VERSION = "2023-06-01"


def loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def auth(api: str, key: str) -> dict[str, str]:
    if api == "anthropic":
        return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Outcome:
    api: str
    stream: bool
    status: int
    header_id: str | None = None
    body_id: str | None = None
    completed: bool = False  # a whole answer, or the stream's terminal event, was received
    completed_at: float | None = None  # time.monotonic() when it was
    cost: Decimal | None = None  # OpenAI `usage.cost`
    error: Any = None  # the error body (JSON) of a non-200 answer, or an in-band stream error
    events: list[Any] = field(default_factory=list)


def chat_body(api: str, model: str, *, stream: bool, max_tokens: int, text: str = "hi") -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
        if api == "openai":
            body["stream_options"] = {"include_usage": True}
    return body


def path(api: str) -> str:
    return "/v1/chat/completions" if api == "openai" else "/v1/messages"


async def chat(
    s: aiohttp.ClientSession,
    base: str,
    key: str,
    api: str,
    model: str,
    *,
    stream: bool,
    max_tokens: int,
    seconds: float = 20.0,
    text: str = "hi",
) -> Outcome:
    body = chat_body(api, model, stream=stream, max_tokens=max_tokens, text=text)
    out = Outcome(api, stream, 0)
    async with asyncio.timeout(seconds):
        async with s.post(base + path(api), json=body, headers=auth(api, key)) as r:
            out.status = r.status
            out.header_id = r.headers.get("X-Generation-Id")
            if r.status != 200:
                out.error = loads(await r.text())
                return out
            if not stream:
                data = loads(await r.text())
                out.body_id = data.get("id")
                if api == "openai":
                    out.cost = data.get("usage", {}).get("cost")
                out.completed, out.completed_at = True, time.monotonic()
                return out
            async for data in sse_events(r):
                out.events.append(data)
                if data == "[DONE]":
                    out.completed, out.completed_at = True, time.monotonic()
                    break
                if isinstance(data, dict):
                    _stream_event(out, data)
                    if data.get("type") == "message_stop":
                        out.completed, out.completed_at = True, time.monotonic()
                        break
    return out


def _stream_event(out: Outcome, data: dict[str, Any]) -> None:
    if "error" in data and data.get("type") != "message_start":
        out.error = data
    if out.api == "openai":
        out.body_id = out.body_id or data.get("id")
        usage = data.get("usage")
        if isinstance(usage, dict) and "cost" in usage:
            out.cost = usage["cost"]
    elif data.get("type") == "message_start":
        out.body_id = data["message"]["id"]


async def sse_events(r: aiohttp.ClientResponse) -> Any:
    """The `data:` payloads of an SSE body, JSON-decoded ("[DONE]" as is); comments skipped."""
    buf = b""
    async for line in r.content:
        if line in (b"\n", b"\r\n"):
            if buf:
                text = buf.decode()
                buf = b""
                yield text if text == "[DONE]" else loads(text)
            continue
        if line.startswith(b"data:"):
            buf += line[5:].strip()


def price_of(tokens_prompt: int, tokens_completion: int, cached: int, cache_write: int, p: Pricing) -> Decimal:
    """tokens x price, by hand (no tiers or reasoning prices in these tests' configs)."""
    cr = p.input if p.cache_read is None else p.cache_read
    cw = p.input if p.cache_write is None else p.cache_write
    uncached = tokens_prompt - cached - cache_write
    total = uncached * p.input + cached * cr + cache_write * cw + tokens_completion * p.output
    return total.scaleb(-6)


async def get_json(s: aiohttp.ClientSession, url: str, key: str) -> tuple[int, Any]:
    async with s.get(url, headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status, loads(await r.text())


async def wait_until(cond: Any, seconds: float, interval: float = 0.05) -> Any:
    """Poll the async predicate `cond()` until it returns something truthy; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        got = await cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {seconds} s")
        await asyncio.sleep(interval)
