"""Anthropic-format upstream translator: documents as `document` blocks, `n` > 1 refused, and
what the body cannot carry listed."""

from __future__ import annotations

import base64

import pytest

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import ChatRequest, DocumentPart, Message, TextPart
from keeprouter.providers.anthropic.request import build_request, dropped_fields


def req(*parts: TextPart | DocumentPart, **kw: object) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content=[*parts, TextPart(text="Read.")])], **kw)  # type: ignore[arg-type]


def blocks(r: ChatRequest) -> list[dict[str, object]]:
    content: list[dict[str, object]] = build_request(r, "up", default_max_tokens=100)["messages"][0]["content"]
    return content[:-1]


def test_documents_become_document_blocks() -> None:
    got = blocks(
        req(
            DocumentPart(data="JVBE", media_type="application/pdf", filename="a.pdf"),
            DocumentPart(url="https://x/a.pdf", title="A", citations={"enabled": True}),
            DocumentPart(text="Notes.", context="meeting", cache_control={"type": "ephemeral"}),
            DocumentPart(data=base64.b64encode(b"plain words").decode(), media_type="text/plain"),
        )
    )
    assert got == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
         "title": "a.pdf"},
        {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}, "title": "A",
         "citations": {"enabled": True}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Notes."},
         "context": "meeting", "cache_control": {"type": "ephemeral"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("part", "says"),
    [
        (DocumentPart(file_id="file-1", where="messages[0].content[0].file.file_id"), "stored file id"),
        (DocumentPart(data="AAAA", media_type="application/zip", where="input[0].content[1].file_data"), "zip"),
    ],
)
def test_documents_a_messages_body_cannot_carry_are_refused_naming_them(part: DocumentPart, says: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        build_request(req(part), "up", default_max_tokens=100)
    assert f"`{part.where}`" in e.value.message and says in e.value.message


def test_n_above_one_is_refused() -> None:
    with pytest.raises(InvalidRequest) as e:
        build_request(req(n=2), "up", default_max_tokens=100)
    assert e.value.param == "n"


def test_dropped_fields_name_what_the_body_cannot_carry() -> None:
    assert dropped_fields(req(source="anthropic", extra={"container": "c"}, seed=1)) == []
    openai = req(source="openai", extra={"presence_penalty": 1}, seed=1, logprobs=True, top_logprobs=2,
                 temperature=0.5, top_p=0.9)  # fmt: skip
    assert dropped_fields(openai) == ["presence_penalty", "seed", "logprobs", "top_logprobs", "top_p"]
