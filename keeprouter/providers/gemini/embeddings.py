"""Embeddings in Google's two wire formats, pure: the Gemini API's `batchEmbedContents` and
Vertex AI's `:predict` for its text-embedding models (the Vertex kind reuses both).

Gemini API: POST `{base}/v1beta/models/{m}:batchEmbedContents`, body
`{"requests": [{"model": "models/{m}", "content": {"parts": [{"text": ...}]}, "taskType"?,
"outputDimensionality"?}]}`, answer `{"embeddings": [{"values": [...]}]}` in request order, at most
100 requests a call. It reports no token count, so usage is our estimate of the texts.

Vertex `:predict`: body `{"instances": [{"content": ..., "task_type"?}], "parameters"?:
{"outputDimensionality"}}`, answer `{"predictions": [{"embeddings": {"values", "statistics":
{"token_count"}}}]}`; 250 instances a call, except the gemini-embedding models, which take one, and
at most 20,000 input tokens a call (a 400 beyond; Google's "Get text embeddings" API limits), so the
text-embedding models' batches are also cut at VERTEX_TOKEN_BUDGET estimated tokens.

A caller's `input_type` (Cohere's names: `search_query`, `search_document`, ...) or `task_type` (Google's
names) becomes the task type, so one client request means the same on every kind.
"""

from __future__ import annotations

from typing import Any

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import Usage
from keeprouter.formats.embeddings import EmbeddingRequest, EmbeddingResponse, estimate_embedding_tokens
from keeprouter.formats.tokens import quick_text
from keeprouter.providers.gemini.request import model_path
from keeprouter.providers.retrieval import chunks_of, vector

GEMINI_BATCH = 100  # requests in one batchEmbedContents call (more is refused with a 400)
VERTEX_BATCH = 250  # instances in one :predict call of the text-embedding models
VERTEX_GEMINI_BATCH = 1  # Vertex's gemini-embedding models take one instance a call
# Vertex refuses a :predict call of more than 20,000 input tokens; our count is an estimate (about
# 4 characters a token), so a quarter is kept in hand for text that tokenizes more densely
VERTEX_TOKEN_BUDGET = 15_000

_TASK_TYPES = {
    "search_query": "RETRIEVAL_QUERY",
    "search_document": "RETRIEVAL_DOCUMENT",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
    "query": "RETRIEVAL_QUERY",  # Voyage's and Jina's names
    "document": "RETRIEVAL_DOCUMENT",
}


def task_type(req: EmbeddingRequest) -> str | None:
    """Google's task type for `req`: its `task_type`, else its `input_type` translated, else none."""
    named = req.extra.get("task_type")
    if isinstance(named, str) and named:
        return named.upper()
    given = req.extra.get("input_type")
    if isinstance(given, str):
        return _TASK_TYPES.get(given.lower(), given.upper())
    return None


def batch_body(texts: list[str], req: EmbeddingRequest, model: str) -> dict[str, Any]:
    """The batchEmbedContents body for `texts` (one batch)."""
    task, name = task_type(req), model_path(model)
    requests: list[dict[str, Any]] = []
    for text in texts:
        one: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if task is not None:
            one["taskType"] = task
        if req.dimensions is not None:
            one["outputDimensionality"] = req.dimensions
        requests.append(one)
    return {"requests": requests}


def _count(data: object, n: int, what: str) -> list[Any]:
    if not isinstance(data, list) or len(data) != n:
        got = len(data) if isinstance(data, list) else "no"
        raise UpstreamError(f"embeddings answer has {got} {what} for {n} inputs")
    return data


def parse_batch(data: dict[str, Any], texts: list[str]) -> EmbeddingResponse:
    """A batchEmbedContents answer: one `values` per request, in request order."""
    items = _count(data.get("embeddings"), len(texts), "embeddings")
    vectors = [vector(e.get("values") if isinstance(e, dict) else None, f"embedding {i}") for i, e in enumerate(items)]
    usage = data.get("usageMetadata")  # not documented for embeddings today; taken when present
    tokens = usage.get("promptTokenCount") if isinstance(usage, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        tokens = estimate_embedding_tokens(list(texts))
    return EmbeddingResponse(vectors=vectors, usage=Usage(input_tokens=tokens))


def vertex_batch_size(model: str) -> int:
    return VERTEX_GEMINI_BATCH if "gemini-embedding" in model else VERTEX_BATCH


def vertex_chunks(texts: list[str], model: str) -> list[list[str]]:
    """`texts` as the model's :predict calls: by count, and by tokens for the text-embedding models."""
    size = vertex_batch_size(model)
    if size == 1:
        return [[t] for t in texts]
    return chunks_of(texts, size, VERTEX_TOKEN_BUDGET, quick_text)


def predict_body(texts: list[str], req: EmbeddingRequest) -> dict[str, Any]:
    """Vertex's :predict body for `texts` (one batch)."""
    task = task_type(req)
    body: dict[str, Any] = {
        "instances": [{"content": t, **({"task_type": task} if task is not None else {})} for t in texts]
    }
    if req.dimensions is not None:
        body["parameters"] = {"outputDimensionality": req.dimensions}
    return body


def parse_predict(data: dict[str, Any], texts: list[str]) -> EmbeddingResponse:
    """A :predict answer: one prediction per instance, in order; usage is the statistics' token
    counts (our estimate for a prediction without one)."""
    items = _count(data.get("predictions"), len(texts), "predictions")
    vectors: list[list[float]] = []
    tokens = 0
    for i, item in enumerate(items):
        emb = item.get("embeddings") if isinstance(item, dict) else None
        if not isinstance(emb, dict):
            raise UpstreamError(f"prediction {i} has no embeddings")
        vectors.append(vector(emb.get("values"), f"prediction {i}"))
        stats = emb.get("statistics")
        count = stats.get("token_count") if isinstance(stats, dict) else None
        # token_count is a JSON number (often written 6.0); anything else is estimated
        if isinstance(count, int | float) and not isinstance(count, bool) and count >= 0:
            tokens += int(count)
        else:
            tokens += estimate_embedding_tokens([texts[i]])
    return EmbeddingResponse(vectors=vectors, usage=Usage(input_tokens=tokens))
