"""`keeprouter teams create|list` and `keeprouter users create|list`, as `keeprouter keys` does:
straight on the configured database, printing JSON in the admin API's shapes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

import orjson

ConfigOf = Callable[[argparse.Namespace, Any], Any]  # cli._config: (args, settings) -> Config


async def _run(args: argparse.Namespace, settings: Any, config_of: ConfigOf) -> Any:
    from keeprouter.people import PeopleService
    from keeprouter.store import open_store

    store = await open_store(config_of(args, settings).database)
    try:
        svc = PeopleService(store)
        if args.cmd == "teams" and args.people_cmd == "create":
            values: dict[str, Any] = {"name": args.name}
        elif args.cmd == "users" and args.people_cmd == "create":
            values = {"email": args.email, "team_id": args.team, "team_admin": args.team_admin}
        elif args.cmd == "teams":
            return {"data": [svc.to_json(t) for t in await svc.list_teams()]}
        else:
            return {"data": [svc.to_json(u) for u in await svc.list_users(team_id=args.team)]}
        if args.limit is not None:
            values["limit"] = args.limit  # a string: parsed exactly, as Decimal
        for field in ("limit_reset", "rpm_limit"):
            if getattr(args, field) is not None:
                values[field] = getattr(args, field)
        if args.models:
            values["models"] = [m for m in args.models.split(",") if m.strip()]
        rec = await (svc.create_team(values) if args.cmd == "teams" else svc.create_user(values))
        return {"data": svc.to_json(rec)}
    finally:
        await store.close()


def run(config_of: ConfigOf) -> Callable[[argparse.Namespace, Any], None]:
    def command(args: argparse.Namespace, settings: Any) -> None:
        from keeprouter.errors import GatewayError

        try:
            out = asyncio.run(_run(args, settings, config_of))
        except GatewayError as e:
            print(f"keeprouter: {e.message}", file=sys.stderr)
            raise SystemExit(1) from None
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())

    return command


def add_parsers(sub: Any, config_of: ConfigOf) -> None:
    """Add the `teams` and `users` commands to the top-level subparsers."""
    for cmd, what in (("teams", "team"), ("users", "user")):
        p = sub.add_parser(cmd, help=f"manage {cmd}")
        p.add_argument("--config", default=argparse.SUPPRESS)
        ps = p.add_subparsers(dest="people_cmd", required=True)
        c = ps.add_parser("create", help=f"create a {what} and print it")
        if cmd == "teams":
            c.add_argument("--name", required=True)
        else:
            c.add_argument("--email", required=True)
            c.add_argument("--team", help="the team's id")
            c.add_argument("--team-admin", action="store_true", help="the user administers their team")
        c.add_argument("--limit", help="budget in USD")
        c.add_argument("--limit-reset", choices=["daily", "weekly", "monthly"], help="budget per UTC period")
        c.add_argument("--models", help="comma-separated allowlist of model ids (default: every model)")
        c.add_argument("--rpm-limit", type=int, help="requests admitted per 60 s")
        lst = ps.add_parser("list", help=f"list {cmd}")
        if cmd == "users":
            lst.add_argument("--team", help="only this team's users")
        p.set_defaults(fn=run(config_of))
