"""The operator's console pages (admin session only): keys and providers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from keeprouter.api.http import STATE
from keeprouter.errors import GatewayError
from keeprouter.store.base import ADMIN_HASH
from keeprouter.web import format as f
from keeprouter.web.charts import Table
from keeprouter.web.console import _html, _message, signed_in
from keeprouter.web.pages.common import Link, Site
from keeprouter.web.pages.console import credit
from keeprouter.web.routes import WEB, _site
from keeprouter.web.session import Signed


@dataclass(frozen=True, slots=True)
class AdminPage:
    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    table: Table
    keys: tuple[Any, ...] = ()  # (hash, name, disabled) for the per-key forms


def _int(raw: str) -> int | None:
    return int(raw) if raw.strip() else None


def _fields(form: Any) -> dict[str, Any]:
    try:
        return {
            "name": str(form.get("name", "")).strip(),
            "limit": str(form.get("limit", "")).strip() or None,
            "limit_reset": str(form.get("limit_reset", "")) or None,
            "rpm_limit": _int(str(form.get("rpm_limit", ""))),
            "tpm_limit": _int(str(form.get("tpm_limit", ""))),
        }
    except ValueError:
        raise web.HTTPBadRequest(text="rate limits must be whole numbers") from None


async def keys_page(request: web.Request, s: Signed) -> web.StreamResponse:
    records = [r for r in await request.app[STATE].keys.list() if r.hash != ADMIN_HASH]
    rows = []
    for r in records:
        c = credit(r)
        rows.append((Link(r.name, f"/console?key={r.hash}", ""), r.label, "disabled" if r.disabled else "enabled",
                     c.used, c.limit, c.remaining, r.limit_reset or f.DASH, str(r.rpm_limit or f.DASH),
                     str(r.tpm_limit or f.DASH), f.usd(r.usage)))  # fmt: skip
    table = Table(("Name", "Key", "State", "Used", "Limit", "Remaining", "Resets", "RPM", "TPM", "All-time usage"),
                  tuple(rows))  # fmt: skip
    page = AdminPage(_site(request.app[WEB], request), "/console/keys", "Keys", s.csrf, True, table,
                     tuple((r.hash, r.name, r.disabled) for r in records))  # fmt: skip
    return _html(request, "console_keys", page)


async def create_key(request: web.Request, s: Signed) -> web.StreamResponse:
    try:
        key, record = await request.app[STATE].keys.create(**_fields(await request.post()))
    except GatewayError as e:
        return _message(request, s, f"Not created: {e}", 400)
    return _message(request, s, f"Key {record.name!r} created. Copy it now: it is shown only once.", 201, key)


async def update_key(request: web.Request, s: Signed) -> web.StreamResponse:
    form = await request.post()
    svc, key_hash, action = request.app[STATE].keys, request.match_info["hash"], request.match_info["action"]
    try:
        if action == "delete":
            await svc.delete(key_hash)
        elif action in ("disable", "enable"):
            await svc.update(key_hash, disabled=action == "disable")
        elif action == "edit":
            await svc.update(key_hash, **_fields(form))
        else:
            raise web.HTTPNotFound()
    except GatewayError as e:
        return _message(request, s, f"Not changed: {e}", 400)
    raise web.HTTPSeeOther("/console/keys")


async def providers_page(request: web.Request, s: Signed) -> web.StreamResponse:
    w = request.app[WEB]
    rows = []
    for model in w.config.models.values():
        for ep in model.endpoints:
            live = w.sources.live(model.id, ep)
            rows.append((model.id, ep.provider, ep.model, live.circuit, f.percent(live.uptime_1d),
                         f.ms(live.latency_p50), f.ms(live.latency_p90),
                         f.throughput(live.throughput_p50)))  # fmt: skip
    table = Table(("Model", "Provider", "Upstream model", "Circuit", "Uptime (1 day)", "Latency p50",
                   "Latency p90", "Throughput p50"), tuple(rows))  # fmt: skip
    page = AdminPage(_site(w, request), "/console/providers", "Providers (live)", s.csrf, True, table)
    return _html(request, "console_keys", page)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/console/keys", signed_in(keys_page, admin=True))
    r.add_post("/console/keys", signed_in(create_key, admin=True))
    r.add_post("/console/keys/{hash}/{action}", signed_in(update_key, admin=True))
    r.add_get("/console/providers", signed_in(providers_page, admin=True))
