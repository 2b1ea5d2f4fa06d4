"""Health probes and the preconnect probes clients send (`HEAD /api/hello` from Claude Code; `HEAD /`
is answered by the home page, keeprouter.web).

`/health` (and `/health/live`): the process answers. `/health/ready` (alias `/health/readiness`):
200 only while the database answers one trivial query within READY_TIMEOUT seconds, else 503, so a
load balancer stops sending requests that could not be charged to a ledger; and 503 from the moment
shutdown begins (draining), so it stops sending requests to a process on its way out.
"""

from __future__ import annotations

import asyncio
import logging
import os

from aiohttp import web

from keeprouter.api.http import STATE, json_response
from keeprouter.serving import DRAINING

READY_TIMEOUT = 2.0  # seconds; a probe must answer well within a load balancer's own timeout
log = logging.getLogger("keeprouter")


async def health(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})


async def live(request: web.Request) -> web.StreamResponse:
    """The process answers; its pid tells which worker of `serve --workers N` did."""
    return json_response({"status": "ok", "pid": os.getpid()})


async def ready(request: web.Request) -> web.StreamResponse:
    draining = request.app.get(DRAINING)
    if draining is not None and draining.on:
        return json_response({"status": "draining"}, status=503)
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await request.app[STATE].store.ping()
    except Exception as e:  # any driver failure, or the timeout: not ready
        log.debug("readiness: the database does not answer (%s)", type(e).__name__)
        return json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return json_response({"status": "ready", "database": "ok"})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/health", health)  # aiohttp answers HEAD on GET routes too
    r.add_get("/health/live", live)
    r.add_get("/health/liveness", health)
    r.add_get("/health/liveliness", health)
    r.add_get("/health/ready", ready)
    r.add_get("/health/readiness", ready)
    r.add_get("/api/hello", health)
