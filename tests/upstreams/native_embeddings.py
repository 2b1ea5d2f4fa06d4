"""What the emulated Gemini, Vertex and Bedrock upstreams answer for their embedding models, written
from each provider's API reference (not from keeprouter). Vectors and token counts are those of
``embeddings.py`` (``vector_for``, ``tokens_of``), so a test can tell vector i belongs to input i.

- Gemini API ``models/{m}:batchEmbedContents``: ``{"requests": [{"model": "models/{m}", "content":
  {"parts": [{"text"}]}, "taskType"?, "title"?, "outputDimensionality"?}]}``, at most 100 requests,
  each naming the path's model -> ``{"embeddings": [{"values"}]}`` (no usage, as the API).
- Vertex ``:predict``: ``{"instances": [{"content", "task_type"?, "title"?}], "parameters"?:
  {"outputDimensionality"?, "autoTruncate"?}}``, at most 250 instances (1 for gemini-embedding
  models) and 20,000 input tokens -> ``{"predictions": [{"embeddings": {"values", "statistics":
  {"token_count", "truncated"}}}]}``.
- Bedrock InvokeModel: Titan ``{"inputText", "dimensions"?, "normalize"?, "embeddingTypes"?}`` ->
  ``{"embedding", "inputTextTokenCount", "embeddingsByType"}``; Cohere ``{"texts" (<= 96),
  "input_type" (required), "truncate"?, "embedding_types"?, "output_dimension"? (v4)}`` ->
  ``{"id", "embeddings": [[...]], "texts", "response_type": "embeddings_floats"}`` (by type when
  ``embedding_types`` is given), its token count in ``x-amzn-bedrock-input-token-count``.
"""

from __future__ import annotations

import uuid
from typing import Any

from .embeddings import DEFAULT_DIMS, tokens_of, vector_for

GEMINI_MAX_BATCH = 100
VERTEX_MAX_INSTANCES = 250
VERTEX_MAX_TOKENS = 20_000  # input tokens of one :predict call ("Get text embeddings", API limits)
COHERE_MAX_TEXTS = 96
COHERE_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering", "image"})
TITAN_DIMENSIONS = frozenset({256, 512, 1024})
BEDROCK_TOKEN_HEADER = "X-Amzn-Bedrock-Input-Token-Count"
_GEMINI_REQUEST_FIELDS = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})


def _dims(value: Any) -> int | str:
    """The asked dimensions, or the reason they are refused."""
    if value is None:
        return DEFAULT_DIMS
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else "invalid dimensions"


def gemini_batch_problem(body: Any, model: str) -> str | None:
    if not isinstance(body, dict) or set(body) != {"requests"}:
        return "Invalid JSON payload received. Expected only `requests`."
    requests = body["requests"]
    if not isinstance(requests, list) or not requests:
        return "* BatchEmbedContentsRequest.requests: requests is not specified"
    if len(requests) > GEMINI_MAX_BATCH:
        return f"* BatchEmbedContentsRequest.requests: at most {GEMINI_MAX_BATCH} requests can be in one batch"
    for i, r in enumerate(requests):
        if not isinstance(r, dict) or set(r) - _GEMINI_REQUEST_FIELDS:
            return f'Invalid JSON payload received. Unknown name at "requests[{i}]".'
        if r.get("model") != f"models/{model}":
            return f"Model names should match: requests[{i}].model is {r.get('model')!r}, the batch's models/{model}"
        parts = (r.get("content") or {}).get("parts") if isinstance(r.get("content"), dict) else None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) and "text" in p for p in parts):
            return f"* BatchEmbedContentsRequest.requests[{i}].content.parts: must have text parts"
        if isinstance(_dims(r.get("outputDimensionality")), str):
            return f"* requests[{i}].output_dimensionality: must be positive"
    return None


def render_gemini_batch(body: dict[str, Any]) -> dict[str, Any]:
    out = []
    for r in body["requests"]:
        text = "".join(p["text"] for p in r["content"]["parts"])
        out.append({"values": vector_for(text, int(_dims(r.get("outputDimensionality"))))})
    return {"embeddings": out}


def vertex_predict_problem(body: Any, model: str) -> str | None:
    if not isinstance(body, dict) or set(body) - {"instances", "parameters"}:
        return "Invalid JSON payload received."
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        return "instances must be a non-empty list"
    limit = 1 if "gemini-embedding" in model else VERTEX_MAX_INSTANCES
    if len(instances) > limit:
        return f"Unable to submit request because the model supports up to {limit} instances per request."
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict) or set(inst) - {"content", "task_type", "title"}:
            return f"instances[{i}]: unknown field"
        if not isinstance(inst.get("content"), str) or not inst["content"]:
            return f"instances[{i}].content must be a non-empty string"
    tokens = sum(tokens_of(inst["content"]) for inst in instances)
    if tokens > VERTEX_MAX_TOKENS:  # the API's per-request input token limit
        return (
            f"Unable to submit request because the input token count is {tokens} "
            f"but the model supports up to {VERTEX_MAX_TOKENS}."
        )
    params = body.get("parameters") or {}
    if not isinstance(params, dict) or set(params) - {"outputDimensionality", "autoTruncate"}:
        return "parameters: unknown field"
    if isinstance(_dims(params.get("outputDimensionality")), str):
        return "parameters.outputDimensionality must be positive"
    return None


def render_vertex_predict(body: dict[str, Any]) -> dict[str, Any]:
    dims = int(_dims((body.get("parameters") or {}).get("outputDimensionality")))
    predictions = [
        {
            "embeddings": {
                "values": vector_for(inst["content"], dims),
                # a float, as the service writes it
                "statistics": {"token_count": float(tokens_of(inst["content"])), "truncated": False},
            }
        }
        for inst in body["instances"]
    ]
    billable = sum(len(inst["content"]) for inst in body["instances"])
    return {"predictions": predictions, "metadata": {"billableCharacterCount": billable}}


def bedrock_invoke_problem(body: Any, model: str) -> str | None:
    if not isinstance(body, dict):
        return "Malformed input request, please reformat your input and try again."
    if "titan-embed-text" in model:
        # G1 (v1) takes inputText alone (its model parameters page); V2 adds the other three
        allowed = (
            {"inputText"}
            if "titan-embed-text-v1" in model
            else {"inputText", "dimensions", "normalize", "embeddingTypes"}
        )
        extra = set(body) - allowed
        if extra:
            return f"Malformed input request: extraneous key [{sorted(extra)[0]}] is not permitted"
        if not isinstance(body.get("inputText"), str) or not body["inputText"]:
            return "Malformed input request: #/inputText: expected minLength: 1"
        if "dimensions" in body and body["dimensions"] not in TITAN_DIMENSIONS:
            return f"Malformed input request: #/dimensions: {body['dimensions']} is not a valid enum value"
        return None
    if "cohere.embed" in model:
        extra = set(body) - {"texts", "input_type", "truncate", "embedding_types", "output_dimension", "images"}
        if extra:
            return f"Malformed input request: extraneous key [{sorted(extra)[0]}] is not permitted"
        texts = body.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return "Malformed input request: #/texts: expected type: JSONArray"
        if len(texts) > COHERE_MAX_TEXTS:
            return f"Malformed input request: #/texts: expected maximum item count: {COHERE_MAX_TEXTS}"
        if body.get("input_type") not in COHERE_INPUT_TYPES:
            return "Malformed input request: #/input_type: required key not found or invalid"
        if "output_dimension" in body and "embed-v4" not in model:
            return "Malformed input request: extraneous key [output_dimension] is not permitted"
        return None
    return f"The provided model identifier is invalid: {model} is not an embedding model"


def render_bedrock_invoke(body: dict[str, Any], model: str) -> tuple[dict[str, Any], int]:
    """The answer and its input token count (Titan's is in the body, Cohere's goes in a header)."""
    if "titan-embed-text" in model:
        text = body["inputText"]
        values = vector_for(text, int(body.get("dimensions") or DEFAULT_DIMS))
        if "titan-embed-text-v1" in model:
            return {"embedding": values, "inputTextTokenCount": tokens_of(text)}, 0
        return {"embedding": values, "inputTextTokenCount": tokens_of(text), "embeddingsByType": {"float": values}}, 0
    texts: list[str] = body["texts"]
    dims = int(body.get("output_dimension") or DEFAULT_DIMS)
    vectors = [vector_for(t, dims) for t in texts]
    answer: dict[str, Any] = {"id": str(uuid.uuid4()), "texts": texts}
    types = body.get("embedding_types")
    if types:  # by type: only the types asked for (int8 as Cohere's signed bytes)
        by_type: dict[str, Any] = {}
        for t in types:
            by_type[t] = vectors if t == "float" else [[round(x * 127) for x in v] for v in vectors]
        answer |= {"embeddings": by_type, "response_type": "embeddings_by_type"}
    else:
        answer |= {"embeddings": vectors, "response_type": "embeddings_floats"}
    return answer, sum(tokens_of(t) for t in texts)
