"""`create_app(config)`: builds the aiohttp application and owns all of its state.

Nothing here runs at import time; the store, the upstream connection pools and the gateway are
created at start-up and closed (after in-flight settles drain) at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from keeprouter.api import activity, anthropic, catalogue, health, keys, openai, openapi, responses, stats
from keeprouter.api.http import STATE, State, json_errors
from keeprouter.billing.ledger import DEFAULT_HOLD_TTL, Ledger
from keeprouter.config import Config
from keeprouter.gateway import SETTLE_WAIT, Gateway
from keeprouter.keys import KeyService
from keeprouter.limits.base import RateLimiter
from keeprouter.limits.memory import MemoryLimiter
from keeprouter.providers import build_adapter
from keeprouter.routing.health import HealthTracker
from keeprouter.store import open_store
from keeprouter.web import console
from keeprouter.web import routes as web_routes
from keeprouter.web.render import Renderer
from keeprouter.web.session import Sessions, login_secret
from keeprouter.web.sources import PageSources

log = logging.getLogger("keeprouter")
HOLD_SWEEP_SECONDS = 60.0

MAX_BODY = 32 * 1024 * 1024  # images inline as base64 make large bodies legitimate

# Every prefix a client may use: OpenAI SDKs add /v1 themselves, OpenRouter users add /api/v1,
# the Vercel AI SDK posts to {ANTHROPIC_BASE_URL}/messages.
PREFIXES = ("/v1", "", "/api/v1")


def create_app(config: Config, admin_key: str) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[json_errors])
    app.cleanup_ctx.append(_lifecycle(config, admin_key))
    r = app.router
    for p in PREFIXES:
        r.add_post(f"{p}/chat/completions", openai.chat_completions)
        r.add_post(f"{p}/responses", responses.create)
        r.add_post(f"{p}/messages", anthropic.messages)
        r.add_post(f"{p}/messages/count_tokens", anthropic.count_tokens)
    for p in ("/v1", "/api/v1"):
        r.add_get(f"{p}/models", catalogue.list_models)
        r.add_get(p + "/models/{id:.+}/endpoints", catalogue.model_endpoints)
        r.add_get(p + "/models/{id:.+}/uptime", stats.model_uptime)
        r.add_get(p + "/models/{id:.+}", catalogue.get_model)
    keys.add_routes(r)
    activity.add_routes(r)
    health.add_routes(r)
    openapi.add_routes(r)
    web_routes.add_routes(r)
    console.add_routes(r)
    return app


def _lifecycle(config: Config, admin_key: str):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        store = await open_store(config.database)
        keys = KeyService(store, admin_key=admin_key)
        await keys.ensure_admin()
        adapters = {pid: build_adapter(p) for pid, p in config.providers.items()}
        tracker = HealthTracker()
        ledger = Ledger(store, hold_ttl=env_seconds("KEEPROUTER_HOLD_TTL", DEFAULT_HOLD_TTL))
        limiter, close_redis = _limiter(config)
        await limiter.start()
        settle_wait = env_seconds("KEEPROUTER_SETTLE_WAIT_SECONDS", SETTLE_WAIT)
        gateway = Gateway(config, adapters, ledger, tracker, limiter, settle_wait)
        app[STATE] = State(config, gateway, keys, store, tracker)
        app[console.SESSIONS] = Sessions(store, keys, login_secret=login_secret(admin_key))
        app[web_routes.WEB] = web_routes.Web(config, PageSources(store, tracker), Renderer())
        sweep_every = env_seconds("KEEPROUTER_HOLD_SWEEP_SECONDS", HOLD_SWEEP_SECONDS)
        sweeper = asyncio.ensure_future(_sweep_holds(ledger, sweep_every))
        flusher = app[stats.FLUSHER] = stats.HealthFlusher(tracker, store, config)
        flusher.start(env_seconds("KEEPROUTER_HEALTH_FLUSH_SECONDS", stats.HEALTH_FLUSH_SECONDS))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await gateway.drain()
            await flusher.close()  # after the drain: the last requests' health is written too
            await limiter.close()
            await close_redis()
            for a in adapters.values():
                await a.close()
            await store.close()

    return ctx


def _limiter(config: Config) -> tuple[RateLimiter, Callable[[], Awaitable[None]]]:
    """Rate limits in Redis when `redis:` is configured (falling back to this process's counters
    while it is away), else in this process; and how to close the one pooled Redis client.
    KEEPROUTER_REDIS_PREFIX prefixes every key this gateway writes in Redis."""
    if not config.redis:
        return MemoryLimiter(), _nothing
    from keeprouter.limits.failover import FailoverLimiter  # imports redis only when it is used
    from keeprouter.limits.redis_limiter import DEFAULT_PREFIX, RedisLimiter, redis_client

    client = redis_client(config.redis)
    prefix = os.environ.get("KEEPROUTER_REDIS_PREFIX") or DEFAULT_PREFIX
    return FailoverLimiter(RedisLimiter(client, prefix=prefix), MemoryLimiter()), client.aclose


async def _nothing() -> None:
    pass


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment, else `default`. Used for the credit-hold
    lifetime (KEEPROUTER_HOLD_TTL) and sweep period (KEEPROUTER_HOLD_SWEEP_SECONDS), which tests
    of a killed gateway shorten; a hold TTL must stay longer than any request may live; and for the
    period of endpoint health writes (KEEPROUTER_HEALTH_FLUSH_SECONDS)."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not (0 < value < float("inf")):
        log.warning("ignoring %s=%r: not a positive number of seconds", name, raw)
        return default
    return value


async def _sweep_holds(ledger: Ledger, every: float) -> None:
    """Return the credit of holds left by requests that died with their gateway (kill -9)."""
    while True:
        try:
            n = await ledger.expire_holds()
            if n:
                log.info("released %d expired credit holds", n)
        except Exception:  # the database may be briefly away; try again next round
            log.exception("sweeping expired holds failed")
        await asyncio.sleep(every)
