"""The ClientApi rows: one per client API, each rendering errors, answers and streams in its own shape."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from keeprouter.clients import registry
from keeprouter.clients.base import Reply
from keeprouter.errors import GatewayError, RateLimited
from keeprouter.formats.canonical import (
    ChatRequest,
    ChatResponse,
    Finish,
    Message,
    Start,
    TextDelta,
    TextPart,
    Usage,
)


class _Totals:
    def __init__(self, usage: Usage, cost: Decimal) -> None:
        self.usage, self.price = usage, cost

    def final_usage(self) -> Usage:
        return self.usage

    def cost(self, u: Usage | None = None) -> Decimal:
        return self.price


def test_one_row_per_client_api_with_distinct_names() -> None:
    names = [api.name for api in registry.CLIENT_APIS]
    assert names == ["openai", "anthropic", "responses"]
    assert all(registry.by_name(n).name == n for n in names)
    with pytest.raises(KeyError):
        registry.by_name("nope")


def test_each_row_renders_errors_in_its_own_shape() -> None:
    err = RateLimited("slow down")
    status, body = registry.ANTHROPIC_MESSAGES.render_error(err)
    assert status == 429 and body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    for api in (registry.OPENAI_CHAT, registry.OPENAI_RESPONSES):
        status, body = api.render_error(err)
        assert status == 429 and body["error"]["code"] == 429 and body["error"]["message"] == "slow down"


@pytest.mark.parametrize(
    ("path", "headers", "name"),
    [
        ("/v1/messages/nope", {}, "anthropic"),
        ("/v1/nope", {"anthropic-version": "2023-06-01"}, "anthropic"),
        ("/v1/chat/nope", {}, "openai"),
        ("/v1/responses/x", {}, "openai"),  # the Responses API answers errors in the Chat Completions shape
    ],
)
def test_an_unclaimed_request_is_answered_in_the_shape_its_caller_reads(
    path: str, headers: dict[str, str], name: str
) -> None:
    assert registry.for_request(path, headers).name == name


def _request(include_usage: bool = False) -> ChatRequest:
    return ChatRequest(
        model="m", messages=[Message(role="user", content=[TextPart(text="hi")])], include_usage=include_usage
    )


def test_rows_render_a_served_answer() -> None:
    resp = ChatResponse(id="up", model="up-m", content=[TextPart(text="ok")], stop_reason="end_turn",
                        usage=Usage(input_tokens=3, output_tokens=1))  # fmt: skip
    reply = Reply(id="gen-abc", model="m", created=7, provider="p", request=_request(), cost=Decimal("0.5"))
    chat = registry.OPENAI_CHAT.render_response(resp, reply)
    assert (chat["id"], chat["provider"], chat["usage"]["cost"]) == ("gen-abc", "p", 0.5)
    msg = registry.ANTHROPIC_MESSAGES.render_response(resp, reply)
    assert (msg["id"], msg["content"]) == ("gen-abc", [{"type": "text", "text": "ok"}])
    out = registry.OPENAI_RESPONSES.render_response(resp, reply)
    assert (out["id"], out["created_at"], out["usage"]["cost"]) == ("resp_abc", 7, 0.5)


def test_anthropic_stream_shows_the_prompt_estimate_when_the_upstream_gives_no_input_count() -> None:
    api = registry.ANTHROPIC_MESSAGES
    enc = api.encoder(Reply(id="gen-1", model="m", created=0, prompt_estimate=42))
    frames = enc.feed(Start(id="u", model="m"))
    start = orjson.loads(frames[0].split(b"data: ", 1)[1])
    assert start["message"]["usage"]["input_tokens"] == 42
    enc = api.encoder(Reply(id="gen-1", model="m", created=0, prompt_estimate=42))
    frames = enc.feed(Start(id="u", model="m", usage=Usage(input_tokens=9)))
    assert orjson.loads(frames[0].split(b"data: ", 1)[1])["message"]["usage"]["input_tokens"] == 9


def test_stream_ends_use_the_final_usage_and_cost_where_the_api_reports_them() -> None:
    totals = _Totals(Usage(input_tokens=5, output_tokens=2), Decimal("0.25"))
    request = _request(include_usage=True)
    chat = registry.OPENAI_CHAT
    enc = chat.encoder(Reply(id="gen-1", model="m", created=0, request=request))
    enc.feed(TextDelta(text="x"))
    tail = b"".join(chat.end(enc, totals))
    assert b'"cost":0.25' in tail and tail.endswith(b"data: [DONE]\n\n")
    responses = registry.OPENAI_RESPONSES
    enc2 = responses.encoder(Reply(id="gen-1", model="m", created=0))
    enc2.feed(TextDelta(text="x"))
    tail = b"".join(responses.end(enc2, totals))
    assert b'"input_tokens":5' in tail and b'"cost":0.25' in tail
    messages = registry.ANTHROPIC_MESSAGES
    enc3 = messages.encoder(Reply(id="gen-1", model="m", created=0))
    enc3.feed(Finish(stop_reason="end_turn"))
    assert b"message_stop" in b"".join(messages.end(enc3, totals))


def test_failure_before_any_answer_is_written_in_band() -> None:
    for api in registry.CLIENT_APIS:
        enc = api.encoder(Reply(id="gen-failed", model="m", created=0))
        assert b"boom" in b"".join(enc.error(GatewayError("boom")))
