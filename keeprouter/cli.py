"""The `keeprouter` command: `serve`, `keys create|list|update|delete`, `check-config`, and
`catalogue import` (cli_catalogue.py), `teams` and `users` (cli_people.py).

Every command first reads the environment knobs (keeprouter.settings) and then the config file; a
bad value in either stops it with one line, `keeprouter: config error: ...`, and exit status 2."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import orjson

from keeprouter import cli_catalogue, cli_people
from keeprouter.config import Config, ConfigError, load_config
from keeprouter.settings import LOG_FORMATS, Settings, load_settings

log = logging.getLogger("keeprouter")


def admin_key_path(config: Config) -> Path:
    """Beside the SQLite database, or in the working directory for PostgreSQL."""
    db = config.database
    if db.startswith("sqlite:///") and db != "sqlite:///:memory:":
        return Path(db.removeprefix("sqlite:///")).resolve().parent / "keeprouter.admin_key"
    return Path.cwd() / "keeprouter.admin_key"


def resolve_admin_key(config: Config, env_key: str | None = None) -> str:
    """The config file's admin key, else `env_key` (KEEPROUTER_ADMIN_KEY), else the one generated on
    first start (kept mode 0600).

    Fail closed: a gateway never runs without an admin key, so a newcomer is never left open.
    """
    if config.admin_key:
        return config.admin_key
    if env_key:
        return env_key
    path = admin_key_path(config)
    if path.exists():
        return path.read_text().strip()
    key = "sk-kr-admin-" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    print(f"keeprouter: generated an admin key (kept in {path}, shown once):\n  {key}", file=sys.stderr)
    return key


def _config(args: argparse.Namespace, settings: Settings) -> Config:
    try:
        return load_config(args.config or settings.config_path)
    except ConfigError as e:
        _config_error(e)


def _config_error(e: ConfigError) -> NoReturn:
    print(f"keeprouter: config error: {e}", file=sys.stderr)
    raise SystemExit(2) from None


def serve(args: argparse.Namespace, settings: Settings) -> None:
    """One process serving (`--workers 1`, or a worker of the supervisor), or the supervisor of
    `--workers N` (keeprouter.workers). SQLite is served by one process only (refused otherwise)."""
    from keeprouter import workers
    from keeprouter.observe import logs, tracing

    config = _config(args, settings)
    logs.configure(args.log_format or settings.log_format)
    worker = os.environ.get(workers.WORKER_ENV)
    if args.workers < 1:
        _fail("--workers must be at least 1")
    is_sqlite = config.database.startswith("sqlite:")
    if args.workers > 1 and not worker and is_sqlite:
        _fail("--workers > 1 needs PostgreSQL (database: postgresql://...): SQLite serves one process only")
    try:
        lock = workers.sqlite_lock(config.database)
    except workers.SqliteBusy as e:
        _fail(str(e))
    try:
        trace = tracing.from_env()
    except tracing.TracingUnavailable as e:
        _fail(str(e))
    admin_key = resolve_admin_key(config, settings.admin_key)  # before any worker starts: one key file, no race
    if args.workers > 1 and not worker:
        for line in startup_summary(config):
            log.log(logging.WARNING if line.startswith("no model") else logging.INFO, "%s", line)
        raise SystemExit(workers.supervise(args.argv, args.workers, args.host, args.port, settings.worker_socket))
    _serve_one(args, config, settings, admin_key, trace, worker is not None)
    del lock  # held to here: the process's whole life


def _fail(message: str) -> NoReturn:
    print(f"keeprouter: {message}", file=sys.stderr)
    raise SystemExit(2)


def _serve_one(
    args: argparse.Namespace, config: Config, settings: Settings, admin_key: str, trace: Any, worker: bool
) -> None:
    from keeprouter import workers
    from keeprouter.app import create_app
    from keeprouter.serving import serve as serve_app

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is optional on platforms without it
        pass
    if not worker:
        for line in startup_summary(config):
            log.log(logging.WARNING if line.startswith("no model") else logging.INFO, "%s", line)
    if config.redis and not worker:
        # Said plainly: instances share keys, credits and generations through PostgreSQL, and rate
        # limits and circuit breakers through Redis; rolling uptime and latency stay per instance.
        log.info("redis is configured: per-key rate limits and endpoint circuits are shared")
    app = create_app(config, admin_key, trace, settings)
    site: dict[str, Any] = {}
    sock = workers.inherited_socket() if worker else None
    if worker and sock is None:
        site["reuse_port"] = True  # KEEPROUTER_WORKER_SOCKET=reuseport: each worker binds the port
    asyncio.run(serve_app(app, args.host, args.port, settings.shutdown_grace, sock, **site))


def startup_summary(config: Config) -> list[str]:
    """What the start-up log says about the catalogue: how many models are served, and when none is,
    exactly which variable or config key would change that."""
    served = sum(1 for m in config.models.values() if m.endpoints)
    listed = sum(1 for m in config.models.values() if m.endpoints or m.unconfigured)
    if served:
        return [f"serving {served} of {listed} catalogue models over providers {', '.join(config.providers)}"]
    envs = sorted({i.enable_env for i in config.provider_info.values() if i.enable_env and not i.configured})
    return [
        f"no model can be served: none of the {listed} catalogue models has a configured provider "
        f"(the pages still list them). Set one of {', '.join(envs)} in the environment, or add a "
        "`providers:` entry (api, base_url, api_key) to the config file, then restart."
    ]


def check_config(args: argparse.Namespace, settings: Settings) -> None:
    config = _config(args, settings)
    routable = [m.id for m in config.models.values() if m.endpoints]
    print(f"ok: {len(config.providers)} providers, {len(routable)} routable models")


async def _keys(args: argparse.Namespace, settings: Settings) -> Any:
    from keeprouter.keys import KeyService
    from keeprouter.people import PeopleService
    from keeprouter.store import open_store

    config = _config(args, settings)
    store = await open_store(config.database)
    try:
        svc = KeyService(store)
        if args.keys_cmd == "create":
            limit = Decimal(args.limit) if args.limit is not None else None
            user_id, team_id = await PeopleService(store).key_owner(args.user, args.team)
            key, record = await svc.create(
                args.name, limit=limit, limit_reset=args.limit_reset, rpm_limit=args.rpm_limit,
                tpm_limit=args.tpm_limit, user_id=user_id, team_id=team_id,
            )  # fmt: skip
            return {"key": key, "data": svc.to_openrouter(record)}
        if args.keys_cmd == "list":
            return {"data": [svc.to_openrouter(r) for r in await svc.list()]}
        if args.keys_cmd == "update":
            changes: dict[str, Any] = {}
            if args.name is not None:
                changes["name"] = args.name
            if args.limit is not None:
                changes["limit"] = None if args.limit == "none" else Decimal(args.limit)
            if args.limit_reset is not None:
                changes["limit_reset"] = None if args.limit_reset == "none" else args.limit_reset
            for field in ("rpm_limit", "tpm_limit"):
                value = getattr(args, field)
                if value is not None:
                    changes[field] = None if value == "none" else _whole(value, field)
            if args.disable:
                changes["disabled"] = True
            if args.enable:
                changes["disabled"] = False
            record = await svc.update(args.hash, **changes)
            return {"data": svc.to_openrouter(record)}
        if args.keys_cmd == "delete":
            await svc.delete(args.hash)
            return {"deleted": True}
    finally:
        await store.close()
    return None


def _whole(text: str, field: str) -> int:
    from keeprouter.errors import InvalidRequest

    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(f"{field}: must be a whole number, or 'none'") from None


def keys(args: argparse.Namespace, settings: Settings) -> None:
    from keeprouter.errors import GatewayError

    try:
        out = asyncio.run(_keys(args, settings))
    except GatewayError as e:
        print(f"keeprouter: {e.message}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.keys_cmd == "create":
        print(out["key"])
        print(f"(shown once; hash {out['data']['hash']})", file=sys.stderr)
    else:
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="keeprouter", description="Self-hostable LLM API router.")
    p.add_argument("--config", help="config file (default: $KEEPROUTER_CONFIG, else built-ins only)")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", default=argparse.SUPPRESS)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=int, default=1,
                   help="worker processes on one port (default 1; more than 1 needs PostgreSQL)")  # fmt: skip
    s.add_argument("--log-format", choices=LOG_FORMATS,
                   help="text (default) or JSON lines carrying the generation id ($KEEPROUTER_LOG_FORMAT)")  # fmt: skip
    s.set_defaults(fn=serve)

    c = sub.add_parser("check-config", help="validate the config and exit")
    c.add_argument("--config", default=argparse.SUPPRESS)
    c.set_defaults(fn=check_config)

    k = sub.add_parser("keys", help="manage API keys")
    k.add_argument("--config", default=argparse.SUPPRESS)
    ks = k.add_subparsers(dest="keys_cmd", required=True)
    kc = ks.add_parser("create", help="create a key and print it (shown once)")
    kc.add_argument("--name", required=True)
    kc.add_argument("--limit", help="credit limit in USD")
    kc.add_argument("--limit-reset", choices=["daily", "weekly", "monthly"], help="the limit applies per UTC period")
    kc.add_argument("--rpm-limit", type=int, help="requests admitted per 60 s")
    kc.add_argument("--tpm-limit", type=int, help="input + output tokens per 60 s")
    ks.add_parser("list", help="list keys")
    ku = ks.add_parser("update", help="change a key")
    ku.add_argument("hash")
    ku.add_argument("--name")
    ku.add_argument("--limit", help="USD, or 'none'")
    ku.add_argument("--limit-reset", choices=["daily", "weekly", "monthly", "none"])
    ku.add_argument("--rpm-limit", help="requests per 60 s, or 'none'")
    ku.add_argument("--tpm-limit", help="tokens per 60 s, or 'none'")
    ku.add_argument("--disable", action="store_true")
    ku.add_argument("--enable", action="store_true")
    kd = ks.add_parser("delete", help="delete a key")
    kd.add_argument("hash")
    kc.add_argument("--user", help="the owning user's id (the key is then in the user's team)")
    kc.add_argument("--team", help="the owning team's id, for a team's service key")
    k.set_defaults(fn=keys)
    cli_people.add_parsers(sub, _config)
    cli_catalogue.add_parsers(sub)
    return p


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> None:
    """Run one command, its KEEPROUTER_* knobs read from `env` (default: the process environment)."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a supervisor hands its workers
    try:
        settings = load_settings(os.environ if env is None else env)
    except ConfigError as e:
        _config_error(e)
    args.fn(args, settings)


if __name__ == "__main__":
    main()
