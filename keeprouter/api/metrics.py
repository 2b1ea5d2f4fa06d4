"""`GET /metrics`: the Prometheus text exposition of every worker.

Who may read it: the scrape-only `metrics_token` of the config or the admin key
(`Authorization: Bearer TOKEN`, which Prometheus sends with `authorization: {credentials_file: ...}`
in its scrape config), unless the operator opts in to a public
endpoint with KEEPROUTER_METRICS_PUBLIC=1 (for a scraper on a private network). The labels hold no
key or key name either way, but the figures (traffic, spend per model) are the operator's business.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from keeprouter.api.http import STATE, require_admin, with_errors
from keeprouter.observe.metrics import CONTENT_TYPE


@with_errors("openai")
async def metrics(request: web.Request) -> web.StreamResponse:
    m = request.app[STATE].gateway.metrics
    assert m is not None, "create_app always builds the metrics"
    if not m.public and not m.scrape_token_ok(request.headers):
        await require_admin(request)
    # With several workers this reads their files: off the event loop.
    return web.Response(body=await asyncio.to_thread(m.render), headers={"Content-Type": CONTENT_TYPE})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/metrics", metrics)
