"""Canonical embeddings -> OpenAI's `/v1/embeddings` response (`render`), and vector encoding.

`encoding_format: "base64"` is each vector as little-endian IEEE-754 float32 bytes, base64-encoded:
what OpenAI sends and what its SDKs decode (`numpy.frombuffer(..., dtype="float32")`, or
`array.array("f", ...)`). The openai-python SDK asks for base64 whenever its caller names no format,
so this is the common path, not an option.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from keeprouter.formats.embeddings import EmbeddingResponse, EncodingFormat, encode_base64


def render(
    resp: EmbeddingResponse,
    *,
    model: str,
    encoding_format: EncodingFormat,
    id: str | None = None,
    provider: str | None = None,
    cost: Decimal | None = None,
) -> dict[str, Any]:
    """OpenAI's response object. `model` is the id the caller asked for; `id` (the generation id,
    for `/api/v1/generation`), `provider` and `usage.cost` are OpenRouter's additions, which the
    SDKs keep as extra fields."""
    data: list[dict[str, Any]] = []
    for index, vector in enumerate(resp.vectors):
        embedding: list[float] | str = encode_base64(vector) if encoding_format == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = resp.usage.input_tokens
    usage: dict[str, Any] = {"prompt_tokens": tokens, "total_tokens": tokens}
    if cost is not None:
        usage["cost"] = float(cost)
    out: dict[str, Any] = {"object": "list", "data": data, "model": model, "usage": usage}
    if id is not None:
        out["id"] = id
    if provider is not None:
        out["provider"] = provider
    return out
