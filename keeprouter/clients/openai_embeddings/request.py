"""OpenAI Embeddings client bodies -> canonical (`parse_request`).

`input` takes OpenAI's four forms: a string, an array of strings, an array of token ids (one
input), or an array of token-id arrays. Validation follows OpenAI's rules (no empty string, no
empty array, at most MAX_INPUTS inputs, one form per request) and names the offending field in an
InvalidRequest whose `param` is that field, as OpenAI's errors do. Fields neither modelled nor
router fields are kept verbatim in `req.extra`.
"""

from __future__ import annotations

from typing import Any

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import ROUTER_FIELDS
from keeprouter.formats.embeddings import EmbeddingInput, EmbeddingRequest, EncodingFormat

MAX_INPUTS = 2048  # OpenAI's limit on the items of one `input` array
_MODELLED = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
_NOT_EXTRA = _MODELLED | ROUTER_FIELDS


def _bad(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"`{field}` {problem}", param=field)


def _token_ids(value: list[Any], field: str) -> list[int]:
    if not value:
        raise _bad(field, "must not be empty")
    for i, t in enumerate(value):
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise _bad(f"{field}[{i}]", "must be a non-negative integer token id")
    return value


def _inputs(value: object) -> list[EmbeddingInput]:
    if isinstance(value, str):
        if not value:
            raise _bad("input", "must not be an empty string")
        return [value]
    if not isinstance(value, list):
        raise _bad("input", "must be a string, an array of strings, or an array of token ids")
    if not value:
        raise _bad("input", "must not be an empty array")
    if all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        return [_token_ids(value, "input")]  # one input given as token ids
    if len(value) > MAX_INPUTS:
        raise _bad("input", f"must have at most {MAX_INPUTS} items, got {len(value)}")
    first = value[0]
    out: list[EmbeddingInput] = []
    for i, item in enumerate(value):
        if isinstance(first, str):
            if not isinstance(item, str):
                raise _bad(f"input[{i}]", "must be a string, like the other items")
            if not item:
                raise _bad(f"input[{i}]", "must not be an empty string")
            out.append(item)
        elif isinstance(first, list):
            if not isinstance(item, list):
                raise _bad(f"input[{i}]", "must be an array of token ids, like the other items")
            out.append(_token_ids(item, f"input[{i}]"))
        else:
            raise _bad(f"input[{i}]", "must be a string or an array of token ids")
    return out


def parse_request(body: dict[str, Any]) -> EmbeddingRequest:
    """An OpenAI `/v1/embeddings` body as an EmbeddingRequest (InvalidRequest naming the field)."""
    model = body.get("model")
    if model is None:
        models = body.get("models")  # OpenRouter's fallback list may stand in for `model`
        model = models[0] if isinstance(models, list) and models else None
    if not isinstance(model, str) or not model:
        raise _bad("model", "is required and must be a non-empty string")
    if "input" not in body:
        raise _bad("input", "is required")
    inputs = _inputs(body["input"])
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise _bad("dimensions", "must be a positive integer")
    encoding: EncodingFormat
    match body.get("encoding_format"):
        case None | "float":  # floats are OpenAI's default when the field is absent
            encoding = "float"
        case "base64":
            encoding = "base64"
        case _:
            raise _bad("encoding_format", "must be 'float' or 'base64'")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("user", "must be a string")
    return EmbeddingRequest(
        model=model,
        inputs=inputs,
        dimensions=dimensions,
        encoding_format=encoding,
        user=user,
        extra={k: v for k, v in body.items() if k not in _NOT_EXTRA},
    )
