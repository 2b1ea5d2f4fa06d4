"""The page routes: each page at `X` as HTML and at `X.md` as Markdown, from one page struct.

Public, no key. Every page carries a strict Content-Security-Policy (same origin only: the charts are
inline SVG drawn on the server, the one script is ours), and no page ever holds a key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from keeprouter.config import Config
from keeprouter.routing.lookup import find_model
from keeprouter.web import site as site_mod
from keeprouter.web.pages import guides, model, models, providers, rankings
from keeprouter.web.pages.common import Site
from keeprouter.web.render import Renderer
from keeprouter.web.sources import PageSources

HTML = "text/html"
MARKDOWN = "text/markdown"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
PAGE_CACHE = "public, max-age=5"  # the figures behind a page are themselves up to 5 s old
STATIC_CACHE = "public, max-age=31536000, immutable"  # addressed by content hash


MAX_CACHED_PAGES = 512  # rendered pages kept; query strings are the caller's, so the count is bounded


@dataclass(slots=True)
class Web:
    config: Config
    sources: PageSources
    renderer: Renderer
    # (path, query, base URL) -> (expires at, status, body): a page is rendered at most once per
    # sources.ttl, the same few seconds its figures may lag anyway.
    rendered: dict[tuple[str, str, str], tuple[float, int, str]] = field(default_factory=dict)

    def cached(self, key: tuple[str, str, str]) -> tuple[int, str] | None:
        hit = self.rendered.get(key)
        if hit is None or hit[0] <= self.sources.clock():
            return None
        return hit[1], hit[2]

    def keep(self, key: tuple[str, str, str], status: int, body: str) -> None:
        if len(self.rendered) >= MAX_CACHED_PAGES:
            self.rendered.clear()
        self.rendered[key] = (self.sources.clock() + self.sources.ttl, status, body)


WEB: web.AppKey[Web] = web.AppKey("keeprouter_web", Web)
# A page: (web state, site, the request's query) -> (template, struct), or None for a 404.
PageFn = Callable[[Web, Site, web.Request], Awaitable[tuple[str, Any] | None]]


def _site(w: Web, request: web.Request) -> Site:
    return Site(w.config.site.name, site_mod.base_url(w.config.site, request), w.sources.today())


def _respond(request: web.Request, body: str, form: str, status: int = 200) -> web.Response:
    ctype = HTML if form == "html" else MARKDOWN
    resp = web.Response(text=body, status=status, content_type=ctype, charset="utf-8", headers=SECURITY_HEADERS)
    resp.headers["Cache-Control"] = PAGE_CACHE if status == 200 else "no-cache"
    resp.headers["Vary"] = "Host, X-Forwarded-Host, X-Forwarded-Proto"
    return resp


def _not_found(w: Web, site: Site, request: web.Request, form: str, what: str) -> web.Response:
    page = guides.Guide(site, request.path, "Not found", (f"There is no {what} here.",), ())
    return _respond(request, w.renderer.render("notfound", page, form), form, 404)


def page(fn: PageFn, what: str = "page") -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler serving `fn`'s page as HTML, or as Markdown when the path ends in `.md`."""

    async def handler(request: web.Request) -> web.StreamResponse:
        w = request.app[WEB]
        form = "md" if request.path.endswith(".md") else "html"
        site = _site(w, request)
        key = (request.path, request.query_string, site.base_url)
        hit = w.cached(key)
        if hit is not None:
            return _respond(request, hit[1], form, hit[0])
        found = await fn(w, site, request)
        if found is None:
            return _not_found(w, site, request, form, what)
        template, data = found
        body = w.renderer.render(template, data, form)
        w.keep(key, 200, body)
        return _respond(request, body, form)

    return handler


def _id(request: web.Request) -> str:
    return request.match_info["id"].removesuffix(".md")


async def _home(w: Web, site: Site, request: web.Request) -> tuple[str, Any]:
    return "guide", guides.home(w.config, site)


async def _models(w: Web, site: Site, request: web.Request) -> tuple[str, Any]:
    return "models", await models.models_page(w.config, w.sources, site, request.query)


async def _model(w: Web, site: Site, request: web.Request) -> tuple[str, Any] | None:
    data = await model.model_page(w.config, w.sources, site, _id(request))
    return None if data is None else ("model", data)


_model_page = page(_model, "model")


async def model_route(request: web.Request) -> web.StreamResponse:
    """`/models/{id}` and its `.md` twin. A name chat completions accepts for a model but that is not
    its id (`anthropic/claude-haiku-4-5`, `claude-haiku-4-5-20251001`, `claude-haiku-4-5:nitro`)
    redirects to the canonical page, in the same form: one address per model, so links, bookmarks,
    the page cache and search engines all meet on it, and the address bar shows the id to use. The
    redirect is temporary (302): an alias follows the operator's catalogue, which a restart may
    change (a model of that very name may be added), and a browser caches a permanent one for good."""
    w = request.app[WEB]
    name = _id(request)
    found = find_model(w.config.models, name)
    if found is not None and found.model.id != name:
        location = "/models/" + quote(found.model.id, safe="/:") + (".md" if request.path.endswith(".md") else "")
        if request.query_string:
            location += "?" + request.query_string
        raise web.HTTPFound(location, headers=SECURITY_HEADERS)
    return await _model_page(request)


async def _providers(w: Web, site: Site, request: web.Request) -> tuple[str, Any]:
    return "providers", providers.providers_page(w.config, site)


async def _provider(w: Web, site: Site, request: web.Request) -> tuple[str, Any] | None:
    data = await providers.provider_page(w.config, w.sources, site, _id(request))
    return None if data is None else ("provider", data)


async def _rankings(w: Web, site: Site, request: web.Request) -> tuple[str, Any]:
    return "rankings", await rankings.rankings_page(w.config, w.sources, site)


def _guide(build: Callable[[Config, Site], guides.Guide]) -> PageFn:
    async def fn(w: Web, site: Site, request: web.Request) -> tuple[str, Any]:
        return "guide", build(w.config, site)

    return fn


async def llms_txt(request: web.Request) -> web.StreamResponse:
    w = request.app[WEB]
    body = guides.llms_txt(w.config, _site(w, request))
    resp = web.Response(text=body, content_type="text/plain", charset="utf-8", headers=SECURITY_HEADERS)
    resp.headers["Cache-Control"] = PAGE_CACHE
    return resp


async def static(request: web.Request) -> web.StreamResponse:
    w = request.app[WEB]
    wanted = request.match_info["file"]
    for f in w.renderer.static.values():
        if f.url == f"/static/{wanted}":
            headers = {"Cache-Control": STATIC_CACHE, "X-Content-Type-Options": "nosniff"}
            resp = web.Response(body=f.body, headers=headers)
            resp.content_type, _, _ = f.content_type.partition(";")
            resp.charset = "utf-8"
            return resp
    raise web.HTTPNotFound()


_home_page = page(_home)


async def root(request: web.Request) -> web.StreamResponse:
    """`/`: the home page for browsers; the small JSON index for a client that asks for JSON."""
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return web.json_response(
            {"name": request.app[WEB].config.site.name, "openai_base_url": "/v1", "anthropic_base_url": "/",
             "models": "/api/v1/models", "health": "/health"}
        )  # fmt: skip
    return await _home_page(request)


def add_routes(r: web.UrlDispatcher) -> None:
    pages: list[tuple[str, PageFn, str]] = [
        ("/models", _models, "page"),
        ("/providers", _providers, "page"),
        ("/rankings", _rankings, "page"),
        *((path, _guide(b), "page") for path, b in guides.GUIDE_PAGES.items()),
    ]
    r.add_get("/", root)
    r.add_get("/index.md", _home_page)
    r.add_get("/.md", _home_page)
    for path, fn, what in pages:
        handler = page(fn, what)
        r.add_get(path, handler)
        r.add_get(path + ".md", handler)
    r.add_get("/models/{id:.+}", model_route)
    r.add_get("/providers/{id:.+}", page(_provider, "provider"))
    r.add_get("/llms.txt", llms_txt)
    r.add_get("/static/{file}", static)
