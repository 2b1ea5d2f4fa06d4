"""`GET /openapi.json`: the OpenAPI 3.1 description of the public API (public, no key).

The document is data (`openapi.yaml` beside this module), read and encoded once per app, when the
route is added; tests/api/test_openapi.py keeps it true to the route table and fuzzes it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
import yaml
from aiohttp import web


def document() -> dict[str, Any]:
    text = resources.files("keeprouter.api").joinpath("openapi.yaml").read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def add_routes(r: web.UrlDispatcher) -> None:
    body = orjson.dumps(document())

    async def openapi(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    r.add_get("/openapi.json", openapi)
