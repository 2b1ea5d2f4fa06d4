"""The public model catalogue as JSON, in OpenRouter's shapes (plus the fields each SDK's
`models.list()` needs): `/v1/models`, `/api/v1/models`, `/v1/models/{id}`, `/api/v1/models/{id}/endpoints`.

`{id}` is any name chat completions accepts (routing.lookup: `author/slug`, dated snapshots,
`:variant`); the answer is the canonical model's, exactly as for its own id."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from keeprouter.api.http import STATE, json_response, with_errors
from keeprouter.billing.headline import headline
from keeprouter.config import Config, EndpointConfig, ModelConfig
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.lookup import require_model
from keeprouter.routing.select import endpoint_key

_MILLION = Decimal(1_000_000)
_BASE_PARAMS = ("max_tokens", "temperature", "top_p", "stop", "seed", "top_k", "user", "stream")


def per_token(price: Decimal | None) -> str:
    """USD per 1M tokens -> OpenRouter's USD-per-token string ("0.0000002")."""
    if price is None or price == 0:
        return "0"
    return format((price / _MILLION).normalize(), "f")


# OpenRouter's names for what a model outputs (`architecture.output_modalities`): an embedding
# model's is "embeddings", plural, where the config's modality says `text->embedding`.
_OUTPUT = {"text->text": "text", "text->embedding": "embeddings", "text->rerank": "rerank"}
# The request fields /v1/embeddings and /v1/rerank take beyond `model` and the inputs.
_RETRIEVAL_PARAMS = {
    "text->embedding": ["dimensions", "encoding_format", "user"],
    "text->rerank": ["top_n", "return_documents", "max_tokens_per_doc"],
}


def supported_parameters(model: ModelConfig) -> list[str]:
    if model.modality in _RETRIEVAL_PARAMS:
        return list(_RETRIEVAL_PARAMS[model.modality])
    caps: set[str] = set()
    for ep in model.endpoints:
        caps |= ep.capabilities
    params = list(_BASE_PARAMS)
    if "tools" in caps:
        params += ["tools", "tool_choice", "parallel_tool_calls"]
    if "response_format" in caps:
        params += ["response_format", "structured_outputs"]
    if "reasoning" in caps:
        params += ["reasoning", "include_reasoning"]
    return params


def _pricing(ep: EndpointConfig | None) -> dict[str, str]:
    if ep is None:
        return {"prompt": "0", "completion": "0", "request": "0", "image": "0"}
    p = ep.pricing
    request = "0" if p.request is None else format(p.request.normalize(), "f")  # USD per request, as is
    out = {"prompt": per_token(p.input), "completion": per_token(p.output), "request": request, "image": "0"}
    if p.cache_read is not None:
        out["input_cache_read"] = per_token(p.cache_read)
    if p.cache_write is not None:
        out["input_cache_write"] = per_token(p.cache_write)
    return out


def model_json(model: ModelConfig) -> dict[str, Any]:
    top = headline(model)
    modalities = list(model.input_modalities)
    output = _OUTPUT[model.modality]
    return {
        "id": model.id,
        "canonical_slug": model.id,
        "object": "model",  # OpenAI SDK fields
        "owned_by": model.maker or "keeprouter",
        "name": model.name,
        "created": model.created,
        "description": model.description,
        "context_length": model.context_length,
        "architecture": {
            "modality": "+".join(modalities) + "->" + output,
            "input_modalities": modalities,
            "output_modalities": [output],
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": _pricing(top),
        "top_provider": {
            "context_length": top.context_length if top else model.context_length,
            "max_completion_tokens": top.max_output_tokens if top else None,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": supported_parameters(model),
        "providers": sorted({ep.provider for ep in model.endpoints}),
    }


def anthropic_model_json(model: ModelConfig) -> dict[str, Any]:
    created = datetime.fromtimestamp(model.created, UTC).isoformat().replace("+00:00", "Z")
    return {"type": "model", "id": model.id, "display_name": model.name, "created_at": created}


def _routable(config: Config) -> list[ModelConfig]:
    return [m for m in config.models.values() if m.endpoints]


@with_errors("openai")
async def list_models(request: web.Request) -> web.StreamResponse:
    config = request.app[STATE].config
    models = _routable(config)
    if "anthropic-version" in request.headers:  # the Anthropic SDK and Claude Code's discovery
        data = [anthropic_model_json(m) for m in models]
        return json_response(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
    return json_response({"object": "list", "data": [model_json(m) for m in models]})


@with_errors("openai")
async def get_model(request: web.Request) -> web.StreamResponse:
    model = require_model(request.app[STATE].config.models, request.match_info["id"]).model
    if "anthropic-version" in request.headers:
        return json_response(anthropic_model_json(model))
    return json_response(model_json(model))


def endpoint_json(model: ModelConfig, ep: EndpointConfig, health: HealthTracker) -> dict[str, Any]:
    key = endpoint_key(model.id, ep)
    state = health.state(key)
    return {
        "name": f"{ep.provider} | {ep.model}",
        "model_id": model.id,
        "model_name": model.name,
        "provider_name": ep.provider,
        "tag": ep.provider,
        "upstream_model": ep.model,
        "context_length": ep.context_length,
        "max_completion_tokens": ep.max_output_tokens,
        "max_prompt_tokens": None,
        "pricing": _pricing(ep),
        "quantization": None,
        "supported_parameters": supported_parameters(replace(model, endpoints=(ep,))),
        "capabilities": sorted(ep.capabilities),
        # OpenRouter's codes: 0 ok, -1 degraded, -2 down
        "status": {"closed": 0, "half_open": -1, "open": -2}[state],
        "circuit": state,
        "uptime_last_5m": health.uptime(key, 300),
        "uptime_last_30m": health.uptime(key, 1800),
        "uptime_last_1d": health.uptime(key, 86400),
        "success_rate_last_30s": health.uptime(key, 30),
        "latency_last_30m": _ms(health.percentiles(key, "latency", 1800)) or None,  # time to first token
        "e2e_latency_last_30m": _ms(health.percentiles(key, "total", 1800)) or None,
        "throughput_last_30m": health.percentiles(key, "throughput", 1800) or None,
    }


def _ms(p: dict[str, float]) -> dict[str, float]:
    return {k: round(v * 1000, 1) for k, v in p.items()}


@with_errors("openai")
async def model_endpoints(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    model = require_model(state.config.models, request.match_info["id"]).model
    base = model_json(model)
    return json_response(
        {
            "data": {
                "id": model.id,
                "name": model.name,
                "created": model.created,
                "description": model.description,
                "architecture": base["architecture"],
                "endpoints": [endpoint_json(model, ep, state.health) for ep in model.endpoints],
            }
        }
    )
