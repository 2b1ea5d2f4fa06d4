"""Cohere v2 rerank client bodies -> canonical (`parse_request`).

Cohere's v2 `documents` are strings; objects with a `text` field (Cohere v1, Jina and the many
clients written for them) are accepted too, and so is Voyage's name for the cut, `top_k`, when
`top_n` is absent (Voyage-shaped clients send it to `/v1/rerank`). Validation names the offending
field.
"""

from __future__ import annotations

from typing import Any

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import ROUTER_FIELDS
from keeprouter.formats.embeddings import RerankRequest

MAX_DOCUMENTS = 10_000  # Cohere's documented ceiling for one request
_MODELLED = frozenset({"model", "query", "documents", "top_n", "top_k", "return_documents", "max_tokens_per_doc"})
_NOT_EXTRA = _MODELLED | ROUTER_FIELDS


def _bad(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"`{field}` {problem}", param=field)


def _positive(body: dict[str, Any], field: str) -> int | None:
    v = body.get(field)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _bad(field, "must be a positive integer")
    return v


def _documents(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _bad("documents", "must be a non-empty array of strings")
    if len(value) > MAX_DOCUMENTS:
        raise _bad("documents", f"must have at most {MAX_DOCUMENTS} items, got {len(value)}")
    out: list[str] = []
    for i, doc in enumerate(value):
        text = doc.get("text") if isinstance(doc, dict) else doc
        if not isinstance(text, str):
            raise _bad(f"documents[{i}]", "must be a string (or an object with a string `text`)")
        out.append(text)
    return out


def parse_request(body: dict[str, Any]) -> RerankRequest:
    """A `/v1/rerank` body as a RerankRequest (InvalidRequest naming the field)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "is required and must be a non-empty string")
    query = body.get("query")
    if not isinstance(query, str) or not query:
        raise _bad("query", "is required and must be a non-empty string")
    documents = _documents(body.get("documents"))
    return_documents = body.get("return_documents", False)
    if not isinstance(return_documents, bool):
        raise _bad("return_documents", "must be a boolean")
    return RerankRequest(
        model=model,
        query=query,
        documents=documents,
        top_n=_positive(body, "top_n") if body.get("top_n") is not None else _positive(body, "top_k"),
        return_documents=return_documents,
        max_tokens_per_doc=_positive(body, "max_tokens_per_doc"),
        extra={k: v for k, v in body.items() if k not in _NOT_EXTRA},
    )
