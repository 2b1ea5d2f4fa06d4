"""The canonical model for the two non-chat calls of a retrieval pipeline: embeddings and rerank.

    EmbeddingRequest(model, inputs: [str | [token id]], dimensions, encoding_format, user)
    EmbeddingResponse(vectors: [[float]] in input order, usage, model)
    RerankRequest(model, query, documents: [str], top_n, return_documents, max_tokens_per_doc)
    RerankResponse(results: [RerankResult(index, relevance_score)] best first, usage, search_units)

Conventions:
- `inputs` keeps the caller's order; every translator answers vectors in that same order, however
  an upstream splits or reorders them, so vector i always belongs to input i.
- Usage reuses the chat `Usage` (only `input_tokens` is set) so billing prices both calls with the
  same rule as a prompt: `pricing.input` per 1M tokens.
- `encoding_format` is how the CLIENT wants its vectors; upstreams are always asked for floats.
- A rerank answer keeps document indexes, never texts: the client renderer takes the texts from the
  request, so a host that echoes documents differently (or not at all) cannot change them.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any, Literal

import msgspec

from keeprouter.formats.canonical import Usage
from keeprouter.formats.tokens import quick_text

EncodingFormat = Literal["float", "base64"]
EmbeddingInput = str | list[int]  # a text, or the token ids of one text


class EmbeddingRequest(msgspec.Struct, kw_only=True):
    model: str
    inputs: list[EmbeddingInput]
    dimensions: int | None = None
    encoding_format: EncodingFormat = "float"
    user: str | None = None
    # Fields the translator did not model (`input_type`, `truncate`, ...), forwarded verbatim to
    # upstreams that speak the client's own format.
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class EmbeddingResponse(msgspec.Struct, kw_only=True):
    vectors: list[list[float]]
    usage: Usage = msgspec.field(default_factory=Usage)
    model: str | None = None  # the model the upstream says it used


class RerankRequest(msgspec.Struct, kw_only=True):
    model: str
    query: str
    documents: list[str]
    top_n: int | None = None
    return_documents: bool = False
    max_tokens_per_doc: int | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class RerankResult(msgspec.Struct, kw_only=True):
    index: int  # into RerankRequest.documents
    relevance_score: float


class RerankResponse(msgspec.Struct, kw_only=True):
    results: list[RerankResult]  # best first
    usage: Usage = msgspec.field(default_factory=Usage)
    search_units: int | None = None  # Cohere's billed unit, when the host reports one
    model: str | None = None


def ranked(results: list[RerankResult], top_n: int | None) -> list[RerankResult]:
    """`results` best first (ties keep the lower index first, so the order is stable), cut to
    `top_n`: hosts that ignore `top_n` or answer unsorted still give the caller what it asked."""
    out = sorted(results, key=lambda r: (-r.relevance_score, r.index))
    return out if top_n is None else out[:top_n]


def estimate_embedding_tokens(inputs: list[EmbeddingInput]) -> int:
    """The inputs' token count before the upstream reports one (credit reservation, tpm limits, and
    the bill when a host sends no usage): token ids count exactly, texts by length."""
    return sum(quick_text(item) if isinstance(item, str) else len(item) for item in inputs)


def estimate_rerank_tokens(req: RerankRequest) -> int:
    """A rerank call's token estimate: the query is read once per document, as hosts bill it."""
    query = quick_text(req.query)
    return sum(query + quick_text(doc) for doc in req.documents)


def encode_base64(vector: list[float]) -> str:
    """`vector` as base64 of little-endian float32 (values round to the nearest float32)."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_base64(data: str) -> list[float]:
    """The inverse of `encode_base64` (ValueError when `data` is not whole float32s)."""
    raw = base64.b64decode(data, validate=True)
    if len(raw) % 4:
        raise ValueError("base64 embedding is not a whole number of float32 values")
    packed = array("f")
    packed.frombytes(raw)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tolist()
