"""The operator's console pages (admin session only): keys (create, edit, disable, delete) and
providers. Every change goes through the same KeyService as the keys API, so the form and the API
validate alike; a refused edit is shown on the form, each message beside its field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from keeprouter.api.http import STATE
from keeprouter.errors import GatewayError, NotFound
from keeprouter.store.base import ADMIN_HASH, KeyRecord
from keeprouter.web import format as f
from keeprouter.web.charts import Table
from keeprouter.web.console_common import html, message, signed_in
from keeprouter.web.pages.common import Link, Site
from keeprouter.web.pages.console import credit
from keeprouter.web.pages.people import log_url
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


@dataclass(frozen=True, slots=True)
class KeyForm:
    """The edit form of one key: the values shown (as typed, after a refusal) and the errors."""

    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    action: str
    label: str
    values: dict[str, str]
    disabled: bool
    errors: dict[str, str]  # field id (or "form") -> message


FIELDS = ("name", "limit", "limit_reset", "rpm_limit", "tpm_limit")


def parse_fields(form: Any, *, edit: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's fields as KeyService arguments ("" is "none": no limit, never resets), and the
    errors of those that are not even of the right kind; the service judges the rest."""
    raw = {k: str(form.get(k, "")).strip() for k in FIELDS}
    fields: dict[str, Any] = {"name": raw["name"], "limit": raw["limit"] or None,
                              "limit_reset": raw["limit_reset"] or None}  # fmt: skip
    errors: dict[str, str] = {}
    for k in ("rpm_limit", "tpm_limit"):
        try:
            fields[k] = int(raw[k]) if raw[k] else None
        except ValueError:
            errors[k] = f"{k}: must be a whole number, or empty for no limit"
    if edit:
        fields["disabled"] = form.get("disabled") == "on"
    return fields, errors


def _values(record: KeyRecord) -> dict[str, str]:
    limit = "" if record.limit is None else f"{record.limit.normalize():f}"
    return {"name": record.name, "limit": limit, "limit_reset": record.limit_reset or "",
            "rpm_limit": str(record.rpm_limit or ""), "tpm_limit": str(record.tpm_limit or "")}  # fmt: skip


def _edit_page(request: web.Request, s: Signed, record: KeyRecord, values: dict[str, str], disabled: bool,
               errors: dict[str, str], status: int = 200) -> web.Response:  # fmt: skip
    path = f"/console/keys/{record.hash}/edit"
    page = KeyForm(_site(request.app[WEB], request), path, f"Edit key {record.name}", s.csrf, True, path,
                   record.label, values, disabled, errors)  # fmt: skip
    return html(request, "console_edit", page, status)


async def edit_form(request: web.Request, s: Signed) -> web.StreamResponse:
    try:
        if request.match_info["hash"] == ADMIN_HASH:  # the admin key is the config's, not editable here
            raise NotFound("Key not found")
        record = await request.app[STATE].keys.get(request.match_info["hash"])
    except GatewayError:
        return message(request, s, "There is no such key.", 404)
    return _edit_page(request, s, record, _values(record), record.disabled, {})


async def edit_key(request: web.Request, s: Signed) -> web.StreamResponse:
    svc, key_hash = request.app[STATE].keys, request.match_info["hash"]
    form = await request.post()
    try:
        if key_hash == ADMIN_HASH:
            raise NotFound("Key not found")
        record = await svc.get(key_hash)
    except GatewayError:
        return message(request, s, "There is no such key.", 404)
    fields, errors = parse_fields(form, edit=True)
    if not errors:
        try:
            await svc.update(key_hash, **fields)
        except NotFound:
            return message(request, s, "There is no such key.", 404)
        except GatewayError as e:
            errors[e.param if e.param in FIELDS else "form"] = str(e)
    if errors:
        typed = {k: str(form.get(k, "")) for k in FIELDS}
        return _edit_page(request, s, record, typed, bool(fields.get("disabled")), errors, 400)
    raise web.HTTPSeeOther("/console/keys")


async def keys_page(request: web.Request, s: Signed) -> web.StreamResponse:
    records = [r for r in await request.app[STATE].keys.list() if r.hash != ADMIN_HASH]
    rows = []
    for r in records:
        c = credit(r)
        rows.append((Link(r.name, f"/console?key={r.hash}", ""), r.label, "disabled" if r.disabled else "enabled",
                     c.used, c.limit, c.remaining, r.limit_reset or f.DASH, str(r.rpm_limit or f.DASH),
                     str(r.tpm_limit or f.DASH), f.usd(r.usage),
                     Link("requests", log_url(key=r.hash), "")))  # fmt: skip
    table = Table(("Name", "Key", "State", "Used", "Limit", "Remaining", "Resets", "RPM", "TPM", "All-time usage",
                   "Log"), tuple(rows))  # fmt: skip
    page = AdminPage(_site(request.app[WEB], request), "/console/keys", "Keys", s.csrf, True, table,
                     tuple((r.hash, r.name, r.disabled) for r in records))  # fmt: skip
    return html(request, "console_keys", page)


async def create_key(request: web.Request, s: Signed) -> web.StreamResponse:
    fields, errors = parse_fields(await request.post(), edit=False)
    if errors:
        return message(request, s, "Not created: " + "; ".join(errors.values()), 400)
    try:
        key, record = await request.app[STATE].keys.create(**fields)
    except GatewayError as e:
        return message(request, s, f"Not created: {e}", 400)
    return message(request, s, f"Key {record.name!r} created. Copy it now: it is shown only once.", 201, key)


async def update_key(request: web.Request, s: Signed) -> web.StreamResponse:
    svc, key_hash, action = request.app[STATE].keys, request.match_info["hash"], request.match_info["action"]
    if action == "edit":
        return await edit_key(request, s)
    try:
        if action == "delete":
            await svc.delete(key_hash)
        elif action in ("disable", "enable"):
            await svc.update(key_hash, disabled=action == "disable")
        else:
            raise web.HTTPNotFound()
    except GatewayError as e:
        return message(request, s, f"Not changed: {e}", 400)
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
    return html(request, "console_keys", page)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/console/keys", signed_in(keys_page, admin=True))
    r.add_post("/console/keys", signed_in(create_key, admin=True))
    r.add_get("/console/keys/{hash}/edit", signed_in(edit_form, admin=True))
    r.add_post("/console/keys/{hash}/{action}", signed_in(update_key, admin=True))
    r.add_get("/console/providers", signed_in(providers_page, admin=True))
