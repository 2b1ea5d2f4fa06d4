"""Liveness and the preconnect probes clients send (`HEAD /api/hello` from Claude Code; `HEAD /`
is answered by the home page)."""

from __future__ import annotations

from aiohttp import web

from keeprouter.api.http import json_response


async def health(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/health", health)  # aiohttp answers HEAD on GET routes too
    r.add_get("/health/liveliness", health)
    r.add_get("/health/readiness", health)
    r.add_get("/api/hello", health)  # "/" is the home page (keeprouter.web)
