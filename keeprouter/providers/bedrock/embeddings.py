"""Embedding models on Bedrock, through InvokeModel (`POST /model/{id}/invoke`), pure.

Bedrock has no common embeddings shape: each model family keeps its own body.
- Amazon Titan Text Embeddings (`amazon.titan-embed-text-v1`, `-v2:0`): ONE text a call,
  `{"inputText", "dimensions"?}` -> `{"embedding": [...], "inputTextTokenCount"}`; a request's texts
  are fanned out concurrently and reassembled in order. G1 (`-v1`) takes `inputText` alone.
- Cohere Embed (`cohere.embed-english-v3`, `-multilingual-v3`, `-v4:0`): at most 96 texts a call,
  `{"texts", "input_type", "truncate"?, "output_dimension"? (v4)}` -> `{"embeddings": [[...]]}` (or,
  by type, `{"embeddings": {"float": [[...]]}}`); its token count is the answer's
  `x-amzn-bedrock-input-token-count` header. A caller's `embedding_types` always gets `float` added:
  the floats are what we answer with, and Cohere answers only the types asked for. `input_type` is
  required by Cohere: the caller's, else `search_document` (what a corpus being indexed, the common
  case, needs).
Model ids may carry a cross-region prefix (`us.cohere.embed-v4:0`) or be an ARN, so the family is
found by name inside the id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import Usage
from keeprouter.formats.embeddings import EmbeddingRequest, EmbeddingResponse, estimate_embedding_tokens
from keeprouter.providers.retrieval import vector

Family = Literal["titan", "cohere"]
TITAN_BATCH = 1
COHERE_BATCH = 96
TOKEN_HEADER = "x-amzn-bedrock-input-token-count"
_COHERE_FIELDS = ("input_type", "truncate", "embedding_types")


def family(model: str) -> Family | None:
    if "titan-embed-text" in model:
        return "titan"
    if "cohere.embed" in model:
        return "cohere"
    return None


def batch_size(fam: Family) -> int:
    return TITAN_BATCH if fam == "titan" else COHERE_BATCH


def titan_body(text: str, req: EmbeddingRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"inputText": text}
    if req.dimensions is not None:
        if "titan-embed-text-v1" in model:  # G1 has one size and refuses any other key
            raise UpstreamError(f"{model} does not take `dimensions`", status=400)
        body["dimensions"] = req.dimensions
    return body


def cohere_body(texts: list[str], req: EmbeddingRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"texts": texts, "input_type": "search_document"}
    body.update({k: req.extra[k] for k in _COHERE_FIELDS if k in req.extra})
    types = body.get("embedding_types")
    if isinstance(types, list) and "float" not in types:
        body["embedding_types"] = [*types, "float"]
    if req.dimensions is not None:
        if "embed-v4" not in model:  # v3 has one size; silently answering another would mislead
            raise UpstreamError(f"{model} does not take `dimensions`", status=400)
        body["output_dimension"] = req.dimensions
    return body


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def parse_titan(data: dict[str, Any], text: str) -> EmbeddingResponse:
    values = vector(data.get("embedding"), "Titan embedding")
    count = data.get("inputTextTokenCount")
    tokens = count if isinstance(count, int) and not isinstance(count, bool) else estimate_embedding_tokens([text])
    return EmbeddingResponse(vectors=[values], usage=Usage(input_tokens=tokens))


def parse_cohere(data: object, headers: Mapping[str, str], texts: list[str]) -> EmbeddingResponse:
    embeddings = data.get("embeddings") if isinstance(data, dict) else None
    if isinstance(embeddings, dict):  # by type: the floats are ours
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list) or len(embeddings) != len(texts):
        got = len(embeddings) if isinstance(embeddings, list) else "no"
        raise UpstreamError(f"Cohere embeddings answer has {got} vectors for {len(texts)} texts")
    vectors = [vector(v, f"embedding {i}") for i, v in enumerate(embeddings)]
    count = _header(headers, TOKEN_HEADER)
    tokens = int(count) if count is not None and count.isdigit() else estimate_embedding_tokens(list(texts))
    return EmbeddingResponse(vectors=vectors, usage=Usage(input_tokens=tokens))
