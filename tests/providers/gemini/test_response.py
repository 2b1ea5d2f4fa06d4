"""Gemini GenerateContentResponse -> canonical, field by field; usage and error shapes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import TextPart, ThinkingPart, ToolCallPart, Usage
from keeprouter.providers.gemini.response import (
    call_id,
    error_of,
    finish_reason,
    http_error,
    parse_response,
    parse_usage,
)


def answer(parts: list[dict[str, Any]], finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "responseId": "resp-1",
        "modelVersion": "gemini-3-flash-preview",
        **extra,
    }


def test_text_answer() -> None:
    r = parse_response(answer([{"text": "Hello"}]), "asked-model")
    assert (r.id, r.model, r.content, r.stop_reason) == (
        "resp-1", "gemini-3-flash-preview", [TextPart(text="Hello")], "end_turn"
    )  # fmt: skip


def test_model_falls_back_to_the_endpoint_model_and_id_is_made() -> None:
    r = parse_response({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}, "gm")
    assert r.model == "gm" and r.id


def test_thoughts_text_signatures_from_every_part() -> None:
    r = parse_response(
        answer([
            {"text": "thinking...", "thought": True, "thoughtSignature": "T1"},
            {"text": "Answer", "thoughtSignature": "T2"},
            {"text": "", "thoughtSignature": "T3"},
        ]),
        "g",
    )  # fmt: skip
    assert r.content == [
        ThinkingPart(text="thinking...", signature="T1", origin="gemini"),
        TextPart(text="Answer"),
        ThinkingPart(signature="T2", origin="gemini"),
        ThinkingPart(signature="T3", origin="gemini"),
    ]


def test_function_calls_get_stable_unique_ids_and_their_signature() -> None:
    data = answer([
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "S1"},
        {"functionCall": {"name": "get_time", "args": {}}},
        {"functionCall": {"name": "given", "args": {"a": 1}, "id": "fc-own"}},
    ])  # fmt: skip
    r = parse_response(data, "g")
    assert r.stop_reason == "tool_use"
    assert r.content == [
        ToolCallPart(id=call_id("resp-1", 0), name="get_weather", arguments='{"city":"Paris"}', signature="S1",
                     origin="gemini"),
        ToolCallPart(id=call_id("resp-1", 1), name="get_time", arguments="{}"),
        ToolCallPart(id="fc-own", name="given", arguments='{"a":1}'),
    ]  # fmt: skip
    again = parse_response(data, "g")
    ids = [p.id for p in again.content if isinstance(p, ToolCallPart)]
    assert ids[:2] == [call_id("resp-1", 0), call_id("resp-1", 1)]
    assert call_id("resp-1", 0) != call_id("resp-1", 1) != call_id("resp-2", 1)
    assert call_id("resp-1", 0).startswith("call_") and call_id("resp-1", 0)[5:].isalnum()


@pytest.mark.parametrize(
    ("finish", "calls", "stop"),
    [
        ("STOP", False, "end_turn"), ("STOP", True, "tool_use"), ("MAX_TOKENS", False, "max_tokens"),
        ("SAFETY", False, "content_filter"), ("RECITATION", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"), ("BLOCKLIST", False, "content_filter"),
        ("SPII", False, "content_filter"), ("MALFORMED_FUNCTION_CALL", False, "error"), ("OTHER", False, "error"),
        ("", False, None), (None, False, None),
    ],
)  # fmt: skip
def test_finish_reasons(finish: Any, calls: bool, stop: str | None) -> None:
    assert finish_reason(finish, calls) == stop


def test_a_blocked_prompt_is_a_content_filter_stop() -> None:
    r = parse_response({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}}, "g")
    assert (r.content, r.stop_reason, r.usage.input_tokens) == ([], "content_filter", 9)


def test_usage_output_is_candidates_plus_thoughts_and_cached_is_inside_input() -> None:
    u = parse_usage({
        "promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 20,
        "thoughtsTokenCount": 30, "toolUsePromptTokenCount": 5, "totalTokenCount": 155,
    })  # fmt: skip
    assert u == Usage(input_tokens=105, output_tokens=50, cache_read_tokens=60, reasoning_tokens=30)
    assert parse_usage(None) == Usage()
    assert parse_usage({"promptTokenCount": True, "candidatesTokenCount": -1}) == Usage()


def test_response_usage_is_parsed() -> None:
    r = parse_response(answer([{"text": "x"}], usageMetadata={"promptTokenCount": 8, "candidatesTokenCount": 2}), "g")
    assert r.usage == Usage(input_tokens=8, output_tokens=2)


@pytest.mark.parametrize("wrap", [lambda e: e, lambda e: [e]])
def test_error_shapes_object_and_list(wrap: Any) -> None:
    err = error_of(wrap({"error": {"code": 400, "message": "Bad field", "status": "INVALID_ARGUMENT"}}))
    assert err is not None and (err.status, err.message) == (400, "Bad field")
    limited = error_of(wrap({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}))
    assert limited is not None and limited.status == 429
    server = error_of(wrap({"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}))
    assert server is not None and server.status == 502 and "internal" in server.message
    bare = error_of(wrap({"error": {"status": "UNAVAILABLE"}}))
    assert bare is not None and bare.message == "Gemini failed with 502: UNAVAILABLE"
    assert error_of(answer([])) is None and error_of([]) is None


def _quota(delay: object) -> dict[str, Any]:
    info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
    help_ = {"@type": "type.googleapis.com/google.rpc.Help", "links": []}
    return {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [help_, info]}}


@pytest.mark.parametrize(("delay", "seconds"), [("37s", "37"), ("0.4s", "1"), ("12.000001s", "13"), ("soon", None),
                                                (5, None), ("-3s", None)])  # fmt: skip
def test_a_429s_retry_info_is_its_retry_after(delay: object, seconds: str | None) -> None:
    """google.rpc.RetryInfo.retryDelay (a Duration) in whole seconds, rounded up; Gemini has no header."""
    err = error_of(_quota(delay))
    assert err is not None and (err.status, err.retry_after) == (429, seconds)


def test_http_error_reads_the_body_only_for_a_429_without_a_header() -> None:
    raw = orjson.dumps(_quota("21s"))
    limited = http_error(429, raw, {})
    assert limited is not None and (limited.status, limited.retry_after, limited.message) == (429, "21", "quota")
    assert http_error(429, raw, {"retry-after": "4"}) is None  # the header wins, mapped as any 429
    assert http_error(429, orjson.dumps([_quota("21s")]), {}) is not None  # the list-shaped body
    assert http_error(429, b'{"error": {"code": 429, "message": "quota"}}', {}) is None  # no delay: by status
    assert http_error(503, raw, {}) is None and http_error(429, b"<html>", {}) is None


def test_a_failed_precondition_is_the_accounts_failure_not_the_callers() -> None:
    """ai.google.dev/gemini-api/docs/troubleshooting: 400 FAILED_PRECONDITION is the free tier refused
    in the account's country (billing off): retried elsewhere, never the caller's 400."""
    body = {"error": {"code": 400, "message": "User location is not supported for the API use.",
                      "status": "FAILED_PRECONDITION"}}  # fmt: skip
    for err in (error_of(body), http_error(400, orjson.dumps(body), {}), http_error(400, orjson.dumps([body]), {})):
        assert err is not None and err.status == 502 and err.retryable
        assert err.message == "Gemini cannot serve this account: User location is not supported for the API use."
    invalid = {"error": {"code": 400, "message": "Bad field", "status": "INVALID_ARGUMENT"}}
    assert http_error(400, orjson.dumps(invalid), {}) is None  # the caller's 400, mapped by status
    # Vertex's Claude answers Anthropic's shape through the same transport: left to the status mapping
    claude = {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}
    assert http_error(400, orjson.dumps(claude), {}) is None
    overloaded = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    assert http_error(429, orjson.dumps(overloaded), {}) is None


def test_an_error_body_raises() -> None:
    with pytest.raises(UpstreamError, match="Bad"):
        parse_response({"error": {"code": 400, "message": "Bad", "status": "INVALID_ARGUMENT"}}, "g")
