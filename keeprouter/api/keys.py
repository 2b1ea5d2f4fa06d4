"""Keys, credits and generations, in OpenRouter's shapes.

Admin only: `POST|GET /api/v1/keys`, `GET|PATCH|DELETE /api/v1/keys/{hash}`.
Any key: `GET /api/v1/key` (its own usage and limit), `GET /api/v1/credits`, `GET /api/v1/generation?id=`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from keeprouter.api.http import STATE, authenticate, json_response, read_json, require_admin, with_errors
from keeprouter.billing.pricing import to_float
from keeprouter.clients.openai_responses.response import generation_id
from keeprouter.errors import InvalidRequest, NotFound
from keeprouter.people import PeopleService, models_field
from keeprouter.store.base import ADMIN_HASH

# The fields each keys request may carry (OpenRouter's, plus the per-minute rate limits, the owner,
# the model allowlist and the parallel limit). Anything else is refused with a 400 naming it: a
# misspelt limit must never be silently dropped.
CREATE_FIELDS = ("name", "limit", "limit_reset", "expires_at", "rpm_limit", "tpm_limit", "include_byok_in_limit",
                 "user_id", "team_id", "models", "max_parallel_requests")  # fmt: skip
UPDATE_FIELDS = ("name", "disabled", "limit", "limit_reset", "expires_at", "rpm_limit", "tpm_limit",
                 "include_byok_in_limit", "models", "max_parallel_requests")  # fmt: skip


def _fields(body: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """The body's fields for the key service, or InvalidRequest naming the first unknown one. The
    service checks each value's type and names the field it refuses."""
    unknown = [f for f in body if f not in known]
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r} (accepted: {', '.join(known)})", param=unknown[0][:100])
    fields = dict(body)
    byok = fields.pop("include_byok_in_limit", False)
    if byok is not False:
        # Accepted as false for OpenRouter clients. Every upstream call here uses the operator's own
        # provider keys, so there is no bring-your-own-key usage: storing true would promise a limit
        # behaviour that cannot exist, so it is refused rather than silently stored as false.
        raise InvalidRequest(
            "include_byok_in_limit: only false is supported (KeepRouter has no bring-your-own-key usage)",
            param="include_byok_in_limit",
        )
    if "models" in fields:
        fields["models"] = models_field(fields["models"])
    if isinstance(fields.get("name"), str):
        fields["name"] = fields["name"].strip()
    return fields


def _hash(request: web.Request) -> str:
    """The {hash} path parameter; one that cannot be a stored hash is simply not found (and never
    reaches the database: PostgreSQL refuses NUL in text)."""
    h = request.match_info["hash"]
    if not h.isascii() or not h.replace("-", "").replace("_", "").isalnum():
        raise NotFound(f"key '{h[:80]}' not found")
    return h


@with_errors("openai")
async def create_key(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    fields = _fields(await read_json(request), CREATE_FIELDS)
    if "name" not in fields:
        raise InvalidRequest("name: required", param="name")
    state = request.app[STATE]
    fields["user_id"], fields["team_id"] = await PeopleService(state.store).key_owner(
        fields.get("user_id"), fields.get("team_id")
    )
    svc = state.keys
    key, record = await svc.create(**fields)
    return json_response({"key": key, "data": svc.to_openrouter(record)}, status=201)


@with_errors("openai")
async def list_keys(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = request.app[STATE].keys
    include_disabled = request.query.get("include_disabled", "true").lower() != "false"
    records = [r for r in await svc.list(include_disabled=include_disabled) if r.hash != ADMIN_HASH]
    return json_response({"data": [svc.to_openrouter(r) for r in records]})


@with_errors("openai")
async def get_key(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = request.app[STATE].keys
    record = await svc.get(_hash(request))
    return json_response({"data": svc.to_openrouter(record)})


@with_errors("openai")
async def update_key(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    fields = _fields(await read_json(request), UPDATE_FIELDS)
    svc = request.app[STATE].keys
    record = await svc.update(_hash(request), **fields)
    return json_response({"data": svc.to_openrouter(record)})


@with_errors("openai")
async def delete_key(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    await request.app[STATE].keys.delete(_hash(request))
    return json_response({"deleted": True})


@with_errors("openai")
async def current_key(request: web.Request) -> web.StreamResponse:
    record = await authenticate(request)
    svc = request.app[STATE].keys
    data = svc.to_openrouter(await svc.get(record.hash))
    data["is_management_key"] = record.is_admin
    return json_response({"data": data})


@with_errors("openai")
async def credits(request: web.Request) -> web.StreamResponse:
    record = await authenticate(request)
    svc = request.app[STATE].keys
    data = svc.to_openrouter(await svc.get(record.hash))
    limit = data.get("limit")
    return json_response({"data": {"total_credits": limit, "total_usage": data.get("usage", 0)}})


@with_errors("openai")
async def generation(request: web.Request) -> web.StreamResponse:
    record = await authenticate(request)
    gen_id = request.query.get("id")
    if not gen_id:
        raise InvalidRequest("id: required (the response's id or its X-Generation-Id header)")
    if "\x00" in gen_id:  # PostgreSQL refuses NUL in text: it can match nothing anyway
        raise NotFound("generation not found")
    state = request.app[STATE]
    gen = await state.store.get_generation(generation_id(gen_id))  # a Responses id names its generation
    if gen is None or (not record.is_admin and gen.key_hash != record.hash):
        raise NotFound(f"generation '{gen_id}' not found")
    return json_response({"data": generation_json(gen)})


def generation_json(gen: Any) -> dict[str, Any]:
    created = datetime.fromtimestamp(gen.created_at).astimezone().isoformat()
    return {
        "id": gen.id,
        "created_at": created,
        "model": gen.model,
        "provider_name": gen.provider,
        "upstream_model": gen.upstream_model,
        "api_type": gen.api,
        "streamed": gen.streamed,
        "cancelled": gen.status == "cancelled",
        "status": gen.status,
        "finish_reason": gen.finish_reason,
        "native_finish_reason": gen.finish_reason,
        "tokens_prompt": gen.tokens_prompt,
        "tokens_completion": gen.tokens_completion,
        "native_tokens_prompt": gen.tokens_prompt,
        "native_tokens_completion": gen.tokens_completion,
        "native_tokens_cached": gen.tokens_cached,
        "native_tokens_cache_write": gen.tokens_cache_write,
        "native_tokens_reasoning": gen.tokens_reasoning,
        "total_cost": to_float(gen.cost),
        "usage": to_float(gen.cost),
        "cache_discount": to_float(gen.cache_discount),
        "cached": gen.cached,  # answered from the response cache (free)
        "latency": gen.ttft_ms,
        "generation_time": (gen.latency_ms or 0) - (gen.ttft_ms or 0),
        "total_time": gen.latency_ms,
        "throughput": gen.throughput,
        "app": gen.app_title or gen.app,
        "http_referer": gen.app,
        "is_byok": False,
        "provider_responses": gen.attempts,
        "error": gen.error,
    }


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/api/v1/keys", create_key)
    r.add_get("/api/v1/keys", list_keys)
    r.add_get("/api/v1/keys/{hash}", get_key)
    r.add_patch("/api/v1/keys/{hash}", update_key)
    r.add_delete("/api/v1/keys/{hash}", delete_key)
    r.add_get("/api/v1/key", current_key)
    r.add_get("/api/v1/credits", credits)
    r.add_get("/api/v1/generation", generation)
