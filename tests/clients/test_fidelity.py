"""Client-side translators: documents parsed from every client API into one typed DocumentPart,
logprobs / n validated, every choice, logprobs and system_fingerprint rendered (whole and
streamed), usage.cost on Messages answers, and the fallback model lists."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from formats.fmt_helpers import openai_chunks

from keeprouter.clients.anthropic_messages import request as messages_request
from keeprouter.clients.anthropic_messages.response import build_response as messages_response
from keeprouter.clients.anthropic_messages.stream import AnthropicStreamEncoder
from keeprouter.clients.base import fallback_models
from keeprouter.clients.openai_chat import request as chat_request
from keeprouter.clients.openai_chat.response import build_response as chat_response
from keeprouter.clients.openai_chat.stream import OpenAIStreamEncoder
from keeprouter.clients.openai_responses import request as responses_request
from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    ChatResponse,
    Choice,
    DocumentPart,
    Finish,
    LogprobsDelta,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    TokenLogprob,
    Usage,
    UsageUpdate,
)

PDF_URL = "data:application/pdf;base64,JVBE"


def chat(**kw: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **kw}


# ---- documents in -----------------------------------------------------------------------------------------


def test_chat_file_parts_become_documents() -> None:
    content = [
        {"type": "text", "text": "Read."},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF_URL}},
        {"type": "file", "file": {"file_id": "file-1"}},
    ]
    req = chat_request.parse_request(chat(messages=[{"role": "user", "content": content}]))
    assert req.messages[0].content[1:] == [
        DocumentPart(data="JVBE", media_type="application/pdf", filename="a.pdf",
                     where="messages[0].content[1].file.file_data"),
        DocumentPart(file_id="file-1", where="messages[0].content[2].file.file_id"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "file"}, "messages[0].content[0].file"),
        ({"type": "file", "file": {"file_data": "JVBE"}}, "messages[0].content[0].file.file_data"),
    ],
)
def test_bad_chat_file_parts_name_the_part(part: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        chat_request.parse_request(chat(messages=[{"role": "user", "content": [part]}]))
    assert f"`{param}`" in e.value.message


def test_file_parts_in_tool_results_are_refused() -> None:
    msgs = [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
                                                               "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "file", "file": {"file_data": PDF_URL}}]},
    ]  # fmt: skip
    with pytest.raises(InvalidRequest):
        chat_request.parse_request(chat(messages=[{"role": "user", "content": "x"}, *msgs]))


def test_responses_input_file_becomes_a_document() -> None:
    parts = [
        {"type": "input_file", "filename": "a.pdf", "file_data": PDF_URL},
        {"type": "input_file", "file_url": "https://x/a.pdf"},
        {"type": "input_file", "file_id": "file-1"},
        {"type": "input_text", "text": "Read."},
    ]
    req = responses_request.parse_request({"model": "m", "input": [{"role": "user", "content": parts}]})
    assert req.messages[0].content == [
        DocumentPart(data="JVBE", media_type="application/pdf", filename="a.pdf",
                     where="input[0].content[0].file_data"),
        DocumentPart(url="https://x/a.pdf", where="input[0].content[1].file_url"),
        DocumentPart(file_id="file-1", where="input[0].content[2].file_id"),
        TextPart(text="Read."),
    ]  # fmt: skip


def test_messages_document_blocks_become_documents() -> None:
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
           "title": "A", "context": "c", "citations": {"enabled": True}}  # fmt: skip
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [doc]}]}
    [part] = messages_request.parse_request(body).messages[0].content
    assert part == DocumentPart(data="JVBE", media_type="application/pdf", title="A", context="c",
                                citations={"enabled": True}, where="messages[0].content[0]")  # fmt: skip
    bad = {"type": "document", "source": {"type": "content", "content": []}}
    with pytest.raises(InvalidRequest) as e:
        messages_request.parse_request({**body, "messages": [{"role": "user", "content": [bad]}]})
    assert "`messages[0].content[0].source`" in e.value.message


# ---- logprobs, n, fallbacks in ----------------------------------------------------------------------------


def test_logprobs_and_n_are_parsed_and_validated() -> None:
    req = chat_request.parse_request(chat(logprobs=True, top_logprobs=2, n=3))
    assert (req.logprobs, req.top_logprobs, req.n, req.extra) == (True, 2, 3, {})
    for body, field in [
        (chat(logprobs="yes"), "logprobs"),
        (chat(top_logprobs=2), "top_logprobs"),
        (chat(logprobs=True, top_logprobs=21), "top_logprobs"),
        (chat(n=0), "n"),
        (chat(n=2, stream=True), "n"),
    ]:
        with pytest.raises(InvalidRequest) as e:
            chat_request.parse_request(body)
        assert f"`{field}`" in e.value.message


def test_fallback_models_from_each_client_api() -> None:
    assert fallback_models({"fallbacks": ["a", {"model": "b"}]}, "models", "fallbacks") == ["a", "b"]
    assert fallback_models({"models": ["x"], "fallbacks": ["y"]}, "models", "fallbacks") == ["x"]
    with pytest.raises(InvalidRequest):
        fallback_models({"fallbacks": "a"}, "fallbacks")
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "fallbacks": ["b"]}
    req = messages_request.parse_request(body)
    assert req.fallback_models == ["b"] and "fallbacks" not in req.extra
    assert responses_request.parse_request({"model": "m", "input": "hi", "models": ["c"]}).fallback_models == ["c"]


# ---- out: every choice, logprobs, fingerprint, cost -------------------------------------------------------

LP = [TokenLogprob(token="A", logprob=-0.5, bytes=[65], top_logprobs=[TokenLogprob(token="A", logprob=-0.5)])]
TOP_JSON = [{"token": "A", "logprob": -0.5, "bytes": None}]
LP_JSON = {"content": [{"token": "A", "logprob": -0.5, "bytes": [65], "top_logprobs": TOP_JSON}], "refusal": None}


def test_chat_answer_has_every_choice_logprobs_and_fingerprint() -> None:
    resp = ChatResponse(
        id="u", model="m", content=[TextPart(text="A")], stop_reason="end_turn", logprobs=LP,
        system_fingerprint="fp_1", more_choices=[Choice(content=[TextPart(text="B")], stop_reason="max_tokens")],
    )  # fmt: skip
    out = chat_response(resp, id="gen-1", model="m", created=1, provider=None, cost=None)
    assert out["system_fingerprint"] == "fp_1"
    assert [(c["index"], c["message"]["content"], c["finish_reason"], c["logprobs"]) for c in out["choices"]] == [
        (0, "A", "stop", LP_JSON),
        (1, "B", "length", None),
    ]


def test_chat_stream_carries_fingerprint_and_logprobs_on_their_text() -> None:
    enc = OpenAIStreamEncoder(id="gen-1", model="m", created=1, provider=None, include_usage=False)
    events: list[StreamEvent] = [
        Start(id="u", model="m", system_fingerprint="fp_2"),
        LogprobsDelta(content=LP),
        TextDelta(text="A"),
        TextDelta(text="B"),
        Finish(stop_reason="end_turn"),
    ]
    chunks = openai_chunks([f for ev in events for f in enc.feed(ev)] + enc.end())
    assert all(c["system_fingerprint"] == "fp_2" for c in chunks)
    assert [(c["choices"][0]["delta"].get("content"), c["choices"][0]["logprobs"]) for c in chunks] == [
        ("", None),
        ("A", LP_JSON),
        ("B", None),
        (None, None),
    ]


def test_messages_answer_and_stream_carry_the_cost() -> None:
    resp = ChatResponse(id="u", model="m", content=[TextPart(text="A")], stop_reason="end_turn")
    assert messages_response(resp, id="gen-1", model="m", cost=Decimal("0.0012"))["usage"]["cost"] == 0.0012
    assert "cost" not in messages_response(resp, id="gen-1", model="m")["usage"]
    enc = AnthropicStreamEncoder(id="gen-1", model="m", prompt_estimate=3)
    for ev in (
        Start(id="u", model="m"),
        TextDelta(text="A"),
        UsageUpdate(usage=Usage(input_tokens=3, output_tokens=1)),
    ):
        enc.feed(ev)
    delta = next(f for f in enc.end(Decimal("0.0012")) if f.startswith(b"event: message_delta"))
    assert orjson.loads(delta.split(b"data: ", 1)[1])["usage"]["cost"] == 0.0012
