"""Teams and users (admin only), in the shapes of OpenRouter's keys API: `{"data": {...}}`.

`POST|GET /api/v1/teams`, `GET|PATCH|DELETE /api/v1/teams/{id}`, and the same for `/api/v1/users`
(`GET /api/v1/users?team_id=` lists one team's). Unknown fields are refused with a 400 naming them.
"""

from __future__ import annotations

from aiohttp import web

from keeprouter.api.http import STATE, json_response, read_json, require_admin, with_errors
from keeprouter.errors import NotFound
from keeprouter.people import TEAM_FIELDS, USER_FIELDS, PeopleService, fields


def _svc(request: web.Request) -> PeopleService:
    return PeopleService(request.app[STATE].store)


def _id(request: web.Request) -> str:
    """The {id} path parameter; one that cannot be an id we issue is simply not found."""
    value = request.match_info["id"]
    if not value.isascii() or not value.replace("_", "").replace("-", "").isalnum() or len(value) > 100:
        raise NotFound(f"{value[:80]!r} not found")
    return value


@with_errors("openai")
async def create_team(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = _svc(request)
    team = await svc.create_team(fields(await read_json(request), TEAM_FIELDS))
    return json_response({"data": svc.to_json(team)}, status=201)


@with_errors("openai")
async def list_teams(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = _svc(request)
    return json_response({"data": [svc.to_json(t) for t in await svc.list_teams()]})


@with_errors("openai")
async def get_team(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = _svc(request)
    return json_response({"data": svc.to_json(await svc.get_team(_id(request)))})


@with_errors("openai")
async def update_team(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = _svc(request)
    team = await svc.update_team(_id(request), fields(await read_json(request), TEAM_FIELDS))
    return json_response({"data": svc.to_json(team)})


@with_errors("openai")
async def delete_team(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    await _svc(request).delete_team(_id(request))
    return json_response({"deleted": True})


@with_errors("openai")
async def create_user(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = _svc(request)
    user = await svc.create_user(fields(await read_json(request), USER_FIELDS))
    return json_response({"data": svc.to_json(user)}, status=201)


@with_errors("openai")
async def list_users(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = _svc(request)
    team_id = request.query.get("team_id")
    if team_id is not None and "\x00" in team_id:  # PostgreSQL refuses NUL in text: it matches nothing
        return json_response({"data": []})
    users = await svc.list_users(team_id=team_id)
    return json_response({"data": [svc.to_json(u) for u in users]})


@with_errors("openai")
async def get_user(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = _svc(request)
    return json_response({"data": svc.to_json(await svc.get_user(_id(request)))})


@with_errors("openai")
async def update_user(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = _svc(request)
    user = await svc.update_user(_id(request), fields(await read_json(request), USER_FIELDS))
    return json_response({"data": svc.to_json(user)})


@with_errors("openai")
async def delete_user(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    await _svc(request).delete_user(_id(request))
    return json_response({"deleted": True})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/api/v1/teams", create_team)
    r.add_get("/api/v1/teams", list_teams)
    r.add_get("/api/v1/teams/{id}", get_team)
    r.add_patch("/api/v1/teams/{id}", update_team)
    r.add_delete("/api/v1/teams/{id}", delete_team)
    r.add_post("/api/v1/users", create_user)
    r.add_get("/api/v1/users", list_users)
    r.add_get("/api/v1/users/{id}", get_user)
    r.add_patch("/api/v1/users/{id}", update_user)
    r.add_delete("/api/v1/users/{id}", delete_user)
