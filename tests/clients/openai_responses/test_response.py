"""Canonical -> Responses client responses (pure): ids, items, signed thinking, status, errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from openai.types.responses import Response

from keeprouter.clients.openai_responses.request import parse_request
from keeprouter.clients.openai_responses.response import (
    build_response,
    echo_of,
    error_object,
    generation_id,
    response_id,
)
from keeprouter.clients.sealed import seal
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    ChatResponse,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from keeprouter.providers.anthropic import request as anthropic_req

PNG = "iVBORw0KGgo="
WX = {"type": "function", "name": "wx", "description": "Weather", "parameters": {"type": "object"}}


def parse(**body: Any) -> Any:
    return parse_request({"model": "m", **body})


def respond(resp: ChatResponse, cost: Decimal | None = None, **body: Any) -> dict[str, Any]:
    return build_response(resp, id="resp_9-x", model="m", created=5, echo=echo_of(parse(input="x", **body)), cost=cost)


def test_ids_name_the_generation_both_ways() -> None:
    rid = response_id("gen-1700-abc")
    assert rid == "resp_1700-abc" and generation_id(rid) == "gen-1700-abc"
    assert generation_id("gen-1700-abc") == "gen-1700-abc"


def test_text_response_has_openais_shape() -> None:
    u = Usage(input_tokens=10, output_tokens=4, cache_read_tokens=2, cache_write_tokens=1, reasoning_tokens=1)
    body = respond(ChatResponse(id="up", model="up", content=[TextPart(text="Hi "), TextPart(text="there")],
                                stop_reason="end_turn", usage=u), cost=Decimal("0.5"), instructions="I")  # fmt: skip
    assert body["output"] == [
        {"id": "msg_9-x_0", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hi there", "annotations": [], "logprobs": []}]}
    ]  # fmt: skip
    assert body["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 1},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 14,
        "cost": 0.5,
    }
    want: object
    for key, want in {"object": "response", "status": "completed", "error": None, "incomplete_details": None,
                      "instructions": "I", "store": True, "previous_response_id": None, "created_at": 5,
                      "parallel_tool_calls": True, "tools": [], "tool_choice": "auto",
                      "metadata": {}}.items():  # fmt: skip
        assert body[key] == want, key
    sdk = Response.model_validate(body)
    assert sdk.output_text == "Hi there"


def test_tool_calls_and_reasoning_become_items() -> None:
    content: list[Part] = [ThinkingPart(text="hmm", signature="s", origin="anthropic"), ThinkingPart(redacted="r"),
               TextPart(text="Checking"), ToolCallPart(id="call_a", name="wx", arguments='{"c":1}'),
               ToolCallPart(id="call_b", name="wx", arguments="{}")]  # fmt: skip
    body = respond(ChatResponse(id="u", model="u", content=content, stop_reason="tool_use"))
    assert [o["type"] for o in body["output"]] == ["reasoning", "message", "function_call", "function_call"]
    summary = [{"type": "summary_text", "text": "hmm"}]
    assert body["output"][0] == {"id": "rs_9-x_0", "type": "reasoning", "summary": summary,
                                 "encrypted_content": "kr1.s.anthropic.s"}  # fmt: skip
    assert body["output"][3] == {"id": "fc_9-x_3", "type": "function_call", "status": "completed", "arguments": "{}",
                                 "call_id": "call_b", "name": "wx"}  # fmt: skip
    Response.model_validate(body)
    unsigned = respond(ChatResponse(id="u", model="u", content=[ThinkingPart(text="t")], stop_reason="end_turn"))
    assert "encrypted_content" not in unsigned["output"][0]


def test_signed_thinking_round_trips_through_encrypted_content() -> None:
    content: list[Part] = [ThinkingPart(text="hmm", signature="sig", origin="anthropic"),
               ThinkingPart(redacted="opaque", origin="anthropic"), TextPart(text="Hi"),
               ToolCallPart(id="toolu_1", name="wx", arguments='{"c":1}')]  # fmt: skip
    out = respond(ChatResponse(id="u", model="u", content=content, stop_reason="tool_use"))["output"]
    assert out[1] == {"id": "rs_9-x_1", "type": "reasoning", "summary": [],
                      "encrypted_content": "kr1.r.anthropic.opaque"}  # fmt: skip
    req = parse(input=[{"role": "user", "content": "hi"}, *out,
                       {"type": "function_call_output", "call_id": "toolu_1", "output": "ok"}])  # fmt: skip
    assert req.messages[1].content[:2] == content[:2]
    an = anthropic_req.build_request(req, "up", default_max_tokens=10)
    assert an["messages"][1]["content"][:2] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    # OpenAI's own encrypted_content, or a malformed one, is not ours: the summary stays unsigned thinking
    for blob in ("gAAAAB-openai", "kr1.x.anthropic.v", "kr1.s.anthropic.", "kr1"):
        req = parse(input=[{"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}],
                            "encrypted_content": blob}])  # fmt: skip
        assert req.messages[0].content == [ThinkingPart(text="t")]
    assert seal(ThinkingPart(text="t", signature="s", origin="a.b")) is None


def test_max_tokens_is_incomplete_and_marks_the_last_item() -> None:
    body = respond(ChatResponse(id="u", model="u", content=[TextPart(text="cu")], stop_reason="max_tokens"),
                   max_output_tokens=2)  # fmt: skip
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete" and body["max_output_tokens"] == 2
    thinking = respond(ChatResponse(id="u", model="u", content=[ThinkingPart(text="a")], stop_reason="max_tokens"))
    assert "status" not in thinking["output"][0]
    empty = respond(ChatResponse(id="u", model="u", content=[], stop_reason="max_tokens"))
    assert empty["output"] == [] and empty["status"] == "incomplete"
    cf = respond(ChatResponse(id="u", model="u", content=[], stop_reason="content_filter"))
    assert cf["incomplete_details"] == {"reason": "content_filter"}


def test_error_object_codes() -> None:
    assert error_object(UpstreamError("x", status=429)) == {"code": "rate_limit_exceeded", "message": "x"}
    assert error_object(UpstreamError("y"))["code"] == "server_error"


def test_a_gemini_call_signature_is_a_sealed_reasoning_item_before_its_call() -> None:
    call = ToolCallPart(id="c0", name="f", arguments="{}", signature="SIG", origin="gemini")
    resp = ChatResponse(id="x", model="m", content=[call], stop_reason="tool_use")
    out = respond(resp)
    assert [o["type"] for o in out["output"]] == ["reasoning", "function_call"]
    assert out["output"][0]["encrypted_content"] == "kr1.s.gemini.SIG"
    back = parse_request({"model": "m", "input": [{"role": "user", "content": "hi"}, *out["output"]]})
    assert back.messages[1].content == [
        ThinkingPart(text="", signature="SIG", origin="gemini"),
        ToolCallPart(id="c0", name="f", arguments="{}"),
    ]
