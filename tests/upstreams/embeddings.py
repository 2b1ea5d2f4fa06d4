"""What the emulated OpenAI-compatible upstream answers on ``/embeddings`` and ``/rerank``.

Written from the wire shapes, not from keeprouter. Deterministic, so a test can recompute any answer:

- ``vector_for(item, dims)``: a vector derived from the input's text (or token ids) alone, so vector
  i visibly belongs to input i. Every component is a multiple of 1/128 in [-1, 1): exact in float32,
  so a vector survives base64 float32 encoding unchanged.
- ``tokens_of(item)``: words of a text, or the number of token ids; usage is their sum.
- ``score(query, document)``: the share of the query's words found in the document.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import uuid
from typing import Any, Literal

DEFAULT_DIMS = 16
OPENAI_MAX_REQUEST_TOKENS = 300_000  # "summed across all inputs in a single request"
TEI_MAX_TOKENS = 512  # the emulated TEI reranker's max input length (a BERT-sized model's)
VOYAGE_MAX_INPUTS = 1000  # Voyage's "maximum length of the list"
# Voyage's /v1/embeddings fields; anything else (OpenAI's `dimensions`, `user`) is a 400
_VOYAGE_FIELDS = frozenset(
    {"model", "input", "input_type", "truncation", "output_dimension", "output_dtype", "encoding_format"}
)
# Mistral's /v1/embeddings fields; any other is a 422 extra_forbidden ("Extra inputs are not permitted")
_MISTRAL_FIELDS = frozenset({"model", "input", "output_dimension", "output_dtype", "encoding_format"})
EmbeddingsDialect = Literal["openai", "voyage", "mistral"]


def _key(item: str | list[int]) -> bytes:
    return item.encode() if isinstance(item, str) else ("tokens:" + ",".join(map(str, item))).encode()


def vector_for(item: str | list[int], dims: int = DEFAULT_DIMS) -> list[float]:
    out: list[float] = []
    block = 0
    while len(out) < dims:
        digest = hashlib.sha256(_key(item) + block.to_bytes(4, "big")).digest()
        out.extend((b - 128) / 128 for b in digest)
        block += 1
    return out[:dims]


def tokens_of(item: str | list[int]) -> int:
    return len(item.split()) if isinstance(item, str) else len(item)


def _words(text: str) -> set[str]:
    return {w.strip(".,;:!?\"'()").lower() for w in text.split()} - {""}


def score(query: str, document: str) -> float:
    q = _words(query)
    return round(len(q & _words(document)) / len(q), 6) if q else 0.0


def embedding_problem(
    body: dict[str, Any],
    max_batch: int | None,
    dialect: EmbeddingsDialect = "openai",
    max_tokens: int = OPENAI_MAX_REQUEST_TOKENS,
) -> tuple[int, str, str | None] | None:
    """(status, message, param) when a real host would refuse ``body``, else None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return 400, "you must provide a model parameter", "model"
    items = inputs_of(body.get("input"))
    if items is None:
        return 400, "'$.input' is invalid. Please check the API reference.", "input"
    if dialect == "voyage":
        return _voyage_problem(body, items)
    if dialect == "mistral":
        return _mistral_problem(body, items)
    if body.get("encoding_format") not in (None, "float", "base64"):
        return 400, "Invalid value for 'encoding_format': must be 'float' or 'base64'.", "encoding_format"
    tokens = sum(tokens_of(item) for item in items)
    if tokens > max_tokens:  # OpenAI's limit summed over a request's inputs
        return 400, f"Requested {tokens} tokens, max {max_tokens} tokens per request", "input"
    if max_batch is not None and len(items) > max_batch:  # Hugging Face TEI's wording
        return 413, f"batch size {len(items)} > maximum allowed batch size {max_batch}", None
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or dims < 1):
        return 400, "Invalid value for 'dimensions'.", "dimensions"
    return None


def _voyage_problem(body: dict[str, Any], items: list[str | list[int]]) -> tuple[int, str, str | None] | None:
    """Voyage's refusals: unknown fields, `encoding_format` other than null / base64, token ids, and
    lists over 1,000 inputs (its API reference)."""
    extra = sorted(set(body) - _VOYAGE_FIELDS)
    if extra:
        return 400, f"Unexpected request parameter: {extra[0]}", extra[0]
    if body.get("encoding_format") not in (None, "base64"):
        return 400, "Value error, encoding_format must be None or 'base64'", "encoding_format"
    if not all(isinstance(item, str) for item in items):
        return 400, "input must be a string or a list of strings", "input"
    if len(items) > VOYAGE_MAX_INPUTS:
        return 400, f"The max allowed list length is {VOYAGE_MAX_INPUTS}, but got {len(items)}.", "input"
    return None


def _mistral_problem(body: dict[str, Any], items: list[str | list[int]]) -> tuple[int, str, str | None] | None:
    extra = sorted(set(body) - _MISTRAL_FIELDS)
    if extra:
        return 422, f"Extra inputs are not permitted: body.{extra[0]}", extra[0]
    if not all(isinstance(item, str) for item in items):
        return 422, "Input should be a valid string", "input"
    return None


def inputs_of(value: Any) -> list[str | list[int]] | None:
    """OpenAI's four ``input`` forms as a list of inputs, or None when ``value`` is none of them."""
    if isinstance(value, str):
        return [value] if value else None
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(t, int) for t in value):
        return [value]
    if all(isinstance(t, str) and t for t in value):
        return list(value)
    if all(isinstance(t, list) and t and all(isinstance(x, int) for x in t) for t in value):
        return list(value)
    return None


def _encoded(vector: list[float], encoding_format: object) -> list[float] | str:
    if encoding_format == "base64":  # little-endian float32, as OpenAI and Voyage send it
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def render_embeddings(
    body: dict[str, Any], model: str, *, reverse: bool = False, dialect: EmbeddingsDialect = "openai"
) -> dict[str, Any]:
    """OpenAI's embeddings answer (Voyage's: its dimensions field and usage differ), base64 when
    asked; ``reverse`` lists the vectors last input first (as hosts may: only ``index`` says whose
    vector it is)."""
    items = inputs_of(body["input"]) or []
    dims = body.get("dimensions" if dialect == "openai" else "output_dimension") or DEFAULT_DIMS
    fmt = body.get("encoding_format")
    data = [
        {"object": "embedding", "index": i, "embedding": _encoded(vector_for(item, dims), fmt)}
        for i, item in enumerate(items)
    ]
    if reverse:
        data.reverse()
    tokens = sum(tokens_of(item) for item in items)
    usage = {"total_tokens": tokens} if dialect == "voyage" else {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


# Cohere's /v2/rerank fields; any other is a 422 ("unknown field: parameter 'top_k' is not a valid field")
COHERE_RERANK_FIELDS = frozenset(
    {"model", "query", "documents", "top_n", "max_tokens_per_doc", "priority", "relevant_spans"}
)


def rerank_problem(
    body: dict[str, Any], tei: bool, cohere: bool = False, max_batch: int | None = None
) -> tuple[int, str] | None:
    if cohere:
        unknown = sorted(set(body) - COHERE_RERANK_FIELDS)
        if unknown:
            return 422, f"unknown field: parameter '{unknown[0]}' is not a valid field"
    if tei:
        if "texts" not in body:  # TEI's refusal of a Cohere-shaped body
            return 422, "Failed to deserialize the JSON body into the target type: missing field `texts`"
        docs = body.get("texts")
        if max_batch is not None and isinstance(docs, list) and len(docs) > max_batch:  # TEI's wording
            return 413, f"batch size {len(docs)} > maximum allowed batch size {max_batch}"
        # TEI's `truncate` defaults to false: a text over the model's length is a 413
        too_long = [d for d in docs or [] if isinstance(d, str) and tokens_of(d) > TEI_MAX_TOKENS]
        if too_long and body.get("truncate") is not True:
            given = tokens_of(too_long[0])
            return 413, f"Input validation error: `inputs` must have less than {TEI_MAX_TOKENS} tokens. Given: {given}"
    else:
        if not isinstance(body.get("model"), str):
            return 400, "model is required"
        docs = body.get("documents")
    if not isinstance(body.get("query"), str) or not body["query"]:
        return 400, "query is required"
    if not isinstance(docs, list) or not docs or not all(isinstance(d, str) for d in docs):
        return 400, "documents must be a non-empty list of strings"
    return None


def render_rerank(body: dict[str, Any], model: str, *, tei: bool, cohere: bool = False) -> Any:
    """vLLM / Jina's answer (``results`` best first, ``usage.total_tokens``), TEI's bare list, or
    Cohere v2's (no documents, ``meta.billed_units.search_units``, no token count)."""
    query = body["query"]
    docs: list[str] = body["texts"] if tei else body["documents"]
    ranked = sorted(range(len(docs)), key=lambda i: -score(query, docs[i]))
    if tei:
        return [{"index": i, "score": score(query, docs[i])} for i in ranked]
    top_n = body.get("top_n")
    if isinstance(top_n, int):
        ranked = ranked[:top_n]
    if cohere:
        return {
            "id": str(uuid.uuid4()),
            "results": [{"index": i, "relevance_score": score(query, docs[i])} for i in ranked],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": -(-len(docs) // 100)}},
        }
    results: list[dict[str, Any]] = []
    for i in ranked:
        result: dict[str, Any] = {"index": i, "relevance_score": score(query, docs[i])}
        if body.get("return_documents", True):
            result["document"] = {"text": docs[i]}
        results.append(result)
    tokens = sum(tokens_of(query) + tokens_of(d) for d in docs)
    return {
        "id": f"rerank-{uuid.uuid4().hex[:16]}",
        "model": model,
        "usage": {"total_tokens": tokens},
        "results": results,
    }
