"""Teams and users (admin only), in the shapes of OpenRouter's keys API: `{"data": {...}}`.

`POST|GET /api/v1/teams`, `GET|PATCH|DELETE /api/v1/teams/{id}`, and the same for `/api/v1/users`
(`GET /api/v1/users?team_id=` lists one team's). Unknown fields are refused with a 400 naming them.
Both resources are served by one set of handlers, made per resource by `_resource`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from keeprouter.api.http import STATE, json_response, read_json, require_admin, with_errors
from keeprouter.errors import NotFound
from keeprouter.people import TEAM_FIELDS, USER_FIELDS, PeopleService, fields


async def _svc(request: web.Request) -> PeopleService:
    """The service, once the caller is known to hold the admin key."""
    await require_admin(request)
    return PeopleService(request.app[STATE].store)


def _id(request: web.Request) -> str:
    """The {id} path parameter; one that cannot be an id we issue is simply not found."""
    value = request.match_info["id"]
    if not value.isascii() or not value.replace("_", "").replace("-", "").isalnum() or len(value) > 100:
        raise NotFound(f"{value[:80]!r} not found")
    return value


def _list_filters(request: web.Request, kind: str) -> dict[str, Any] | None:
    """A user listing's `?team_id=`; None when it can match nothing (PostgreSQL refuses NUL in text)."""
    if kind != "user":
        return {}
    team_id = request.query.get("team_id")
    return None if team_id is not None and "\x00" in team_id else {"team_id": team_id}


def _resource(r: web.UrlDispatcher, kind: str, known: tuple[str, ...]) -> None:
    """The five routes of one resource ("team" or "user"), over PeopleService's `<verb>_<kind>`."""
    base = f"/api/v1/{kind}s"

    @with_errors("openai")
    async def create(request: web.Request) -> web.StreamResponse:
        svc = await _svc(request)
        rec = await getattr(svc, f"create_{kind}")(fields(await read_json(request), known))
        return json_response({"data": svc.to_json(rec)}, status=201)

    @with_errors("openai")
    async def listing(request: web.Request) -> web.StreamResponse:
        svc = await _svc(request)
        filters = _list_filters(request, kind)
        found = [] if filters is None else await getattr(svc, f"list_{kind}s")(**filters)
        return json_response({"data": [svc.to_json(rec) for rec in found]})

    @with_errors("openai")
    async def get(request: web.Request) -> web.StreamResponse:
        svc = await _svc(request)
        return json_response({"data": svc.to_json(await getattr(svc, f"get_{kind}")(_id(request)))})

    @with_errors("openai")
    async def update(request: web.Request) -> web.StreamResponse:
        svc = await _svc(request)
        rec = await getattr(svc, f"update_{kind}")(_id(request), fields(await read_json(request), known))
        return json_response({"data": svc.to_json(rec)})

    @with_errors("openai")
    async def delete(request: web.Request) -> web.StreamResponse:
        svc = await _svc(request)
        await getattr(svc, f"delete_{kind}")(_id(request))
        return json_response({"deleted": True})

    r.add_post(base, create)
    r.add_get(base, listing)
    r.add_get(base + "/{id}", get)
    r.add_patch(base + "/{id}", update)
    r.add_delete(base + "/{id}", delete)


def add_routes(r: web.UrlDispatcher) -> None:
    _resource(r, "team", TEAM_FIELDS)
    _resource(r, "user", USER_FIELDS)
