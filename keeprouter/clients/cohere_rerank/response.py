"""Canonical rerank -> Cohere's v2 rerank response (`render`) and the rerank error body.

`{id, results: [{index, relevance_score, document?: {text}}], meta: {api_version, billed_units}}`,
best first, at most `top_n` results, each document's text taken from the request. OpenRouter's
`model`, `provider` and `usage` ride alongside; Cohere's SDK keeps them as extra fields.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from keeprouter.clients.openai_chat.response import render_error as openai_error
from keeprouter.errors import GatewayError
from keeprouter.formats.embeddings import RerankRequest, RerankResponse, ranked


def render(
    resp: RerankResponse,
    req: RerankRequest,
    *,
    id: str,
    model: str,
    provider: str | None = None,
    cost: Decimal | None = None,
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for r in ranked(resp.results, req.top_n):
        item: dict[str, Any] = {"index": r.index, "relevance_score": r.relevance_score}
        if req.return_documents:
            item["document"] = {"text": req.documents[r.index]}
        results.append(item)
    # A search unit is one query over up to 100 documents (Cohere's unit); hosts that bill tokens
    # report none, so count it the same way for every host.
    units = resp.search_units if resp.search_units is not None else -(-len(req.documents) // 100)
    tokens = resp.usage.input_tokens
    usage: dict[str, Any] = {"search_units": units, "total_tokens": tokens}
    if cost is not None:
        usage["cost"] = float(cost)
    out: dict[str, Any] = {
        "id": id,
        "results": results,
        "meta": {
            "api_version": {"version": "2"},
            "billed_units": {"search_units": units},
            "tokens": {"input_tokens": tokens, "output_tokens": 0},
        },
        "model": model,
        "usage": usage,
    }
    if provider is not None:
        out["provider"] = provider
    return out


def render_error(err: GatewayError) -> dict[str, Any]:
    """A rerank error: Cohere's `{"message"}` at the top (what Cohere's SDK and the Jina / vLLM
    clients show) and OpenRouter's `{"error": {message, type, code, param}}` beside it (what
    gateway clients and OpenAI-style wrappers parse), so either family finds the message."""
    body = openai_error(err)
    return {"message": body["error"]["message"], **body}
