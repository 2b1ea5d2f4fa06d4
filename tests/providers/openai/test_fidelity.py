"""OpenAI-format upstream translators: documents as `file` parts, logprobs / n sent and read back
(every choice, token logprobs, system_fingerprint), and what the body cannot carry listed."""

from __future__ import annotations

import pytest

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    LogprobsDelta,
    Message,
    Start,
    TextDelta,
    TextPart,
    TokenLogprob,
)
from keeprouter.providers.openai.request import build_request, dropped_fields
from keeprouter.providers.openai.response import parse_response
from keeprouter.providers.openai.stream import OpenAIStreamDecoder


def req(*parts: TextPart | DocumentPart, **kw: object) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="Read."), *parts])], **kw)  # type: ignore[arg-type]


def test_documents_become_file_parts_or_text() -> None:
    body = build_request(
        req(
            DocumentPart(data="JVBE", media_type="application/pdf", filename="a.pdf"),
            DocumentPart(data="JVBE", media_type="application/pdf", title="Report"),
            DocumentPart(file_id="file-1"),
            DocumentPart(text="Notes."),
        ),
        "up",
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Read."},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "file", "file": {"filename": "Report", "file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "file", "file": {"file_id": "file-1"}},
        {"type": "text", "text": "Notes."},
    ]


def test_a_document_by_url_is_refused_naming_the_part() -> None:
    with pytest.raises(InvalidRequest) as e:
        build_request(req(DocumentPart(url="https://x/a.pdf", where="messages[0].content[1]")), "up")
    assert "`messages[0].content[1]`" in e.value.message and e.value.status == 400


def test_logprobs_and_n_are_sent_whoever_asked() -> None:
    body = build_request(req(logprobs=True, top_logprobs=3, n=2, source="responses"), "up")
    assert (body["logprobs"], body["top_logprobs"], body["n"]) == (True, 3, 2)
    plain = build_request(req(), "up")
    assert not {"logprobs", "top_logprobs", "n"} & set(plain)


def test_dropped_fields_name_what_another_format_sent() -> None:
    assert dropped_fields(req(source="openai", extra={"frequency_penalty": 1}, top_k=3)) == []
    anthropic = req(source="anthropic", extra={"container": "c", "_internal": 1, "output_config": {}}, top_k=3)
    assert dropped_fields(anthropic) == ["container", "top_k"]
    server = req(source="anthropic", server_tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert dropped_fields(server) == ["tools[type=web_search_20250305]"]
    assert dropped_fields(req(source="anthropic", user="u" * 65)) == ["metadata.user_id"]


def _lp(token: str) -> dict[str, object]:
    return {
        "token": token,
        "logprob": -0.5,
        "bytes": [1],
        "top_logprobs": [{"token": token, "logprob": -0.5, "bytes": None}],
    }


def test_every_choice_logprobs_and_fingerprint_are_read() -> None:
    resp = parse_response(
        {
            "id": "c1",
            "model": "m",
            "system_fingerprint": "fp_1",
            "choices": [
                {"index": 1, "message": {"role": "assistant", "content": "B"}, "finish_reason": "length",
                 "logprobs": {"content": [_lp("B")]}},
                {"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop",
                 "logprobs": {"content": [_lp("A")], "refusal": None}},
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4},
        }
    )  # fmt: skip
    assert resp.content == [TextPart(text="A")] and resp.stop_reason == "end_turn"
    assert resp.system_fingerprint == "fp_1"
    top = [TokenLogprob(token="A", logprob=-0.5)]
    assert resp.logprobs == [TokenLogprob(token="A", logprob=-0.5, bytes=[1], top_logprobs=top)]
    [second] = resp.more_choices
    assert (second.content, second.stop_reason) == ([TextPart(text="B")], "max_tokens")
    assert second.logprobs is not None and second.logprobs[0].token == "B"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (3, 4)


def test_stream_fingerprint_on_start_and_logprobs_before_their_text() -> None:
    d = OpenAIStreamDecoder()
    first = d.feed({"id": "c", "model": "m", "system_fingerprint": "fp_2", "choices": [
        {"index": 0, "delta": {"content": "Hi"}, "logprobs": {"content": [_lp("Hi")]}}]})  # fmt: skip
    assert isinstance(first[0], Start) and first[0].system_fingerprint == "fp_2"
    assert isinstance(first[1], LogprobsDelta) and first[1].content[0].token == "Hi"
    assert first[2] == TextDelta(text="Hi")
    later = d.feed({"choices": [{"index": 0, "delta": {"content": "!"}, "logprobs": None}]})
    assert later == [TextDelta(text="!")]
