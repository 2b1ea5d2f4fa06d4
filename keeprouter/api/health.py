"""Liveness and the preconnect probes clients send (`HEAD /` from Claude Code)."""

from __future__ import annotations

from aiohttp import web

from keeprouter.api.http import json_response


async def health(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})


async def root(request: web.Request) -> web.StreamResponse:
    return json_response(
        {
            "name": "KeepRouter",
            "openai_base_url": "/v1",
            "anthropic_base_url": "/",
            "models": "/api/v1/models",
            "health": "/health",
        }
    )


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/health", health)  # aiohttp answers HEAD on GET routes too
    r.add_get("/health/liveliness", health)
    r.add_get("/health/readiness", health)
    r.add_get("/api/hello", health)
    r.add_get("/", root)
