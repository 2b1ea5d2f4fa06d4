"""`create_app(config, admin_key, settings=...)`: builds the aiohttp application and owns all of its state.

Nothing here runs at import time; the store, the upstream connection pools and the gateway are
created at start-up and closed (after in-flight settles drain) at shutdown. Every environment knob
arrives in `settings` (keeprouter.settings), read once, already validated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from keeprouter.api import activity, anthropic, catalogue, health, keys, metrics, openai, openapi, responses, stats
from keeprouter.api import people as people_api
from keeprouter.api.http import STATE, State, json_errors
from keeprouter.api.retrieval import add_routes as add_retrieval_routes
from keeprouter.api.stored_responses import StoredResponses
from keeprouter.billing.ledger import Ledger
from keeprouter.billing.settle_queue import SettleQueue
from keeprouter.config import Config
from keeprouter.gateway import Gateway
from keeprouter.keys import KeyService
from keeprouter.limits.base import RateLimiter
from keeprouter.limits.memory import MemoryLimiter
from keeprouter.observe.metrics import Metrics
from keeprouter.observe.tracing import Tracing
from keeprouter.providers import build_adapter
from keeprouter.routing.affinity import AffinityTable, MemoryAffinity
from keeprouter.routing.fit import SignatureIssuers
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.select import endpoint_key
from keeprouter.serving import DRAINING, Draining
from keeprouter.settings import Settings, load_settings
from keeprouter.store import Store, open_store
from keeprouter.web import console, console_people
from keeprouter.web import oidc as web_oidc
from keeprouter.web import routes as web_routes
from keeprouter.web.render import Renderer
from keeprouter.web.session import Sessions, login_secret
from keeprouter.web.sources import PageSources

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("keeprouter")
GAUGE_EVERY = 5.0  # seconds between two updates of the endpoint gauges of /metrics

MAX_BODY = 32 * 1024 * 1024  # images inline as base64 make large bodies legitimate

# Every prefix a client may use: OpenAI SDKs add /v1 themselves, OpenRouter users add /api/v1,
# the Vercel AI SDK posts to {ANTHROPIC_BASE_URL}/messages.
PREFIXES = ("/v1", "", "/api/v1")


def create_app(
    config: Config, admin_key: str, tracing: Tracing | None = None, settings: Settings | None = None
) -> web.Application:
    """`tracing`: OpenTelemetry spans (observe.tracing.from_env), closed with the app; None: off.
    `settings`: the environment knobs; None reads them from the environment now (ConfigError for a
    bad value), which lets a test set a variable before it builds an app."""
    if settings is None:
        settings = load_settings(os.environ)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[json_errors])
    app[DRAINING] = Draining()
    app.cleanup_ctx.append(_lifecycle(config, admin_key, tracing, settings))
    r = app.router
    for p in PREFIXES:
        r.add_post(f"{p}/chat/completions", openai.chat_completions)
        r.add_post(f"{p}/messages", anthropic.messages)
        r.add_post(f"{p}/messages/count_tokens", anthropic.count_tokens)
    for p in ("/v1", "/api/v1"):
        r.add_get(f"{p}/models", catalogue.list_models)
        r.add_get(p + "/models/{id:.+}/endpoints", catalogue.model_endpoints)
        r.add_get(p + "/models/{id:.+}/uptime", stats.model_uptime)
        r.add_get(p + "/models/{id:.+}", catalogue.get_model)
    responses.add_routes(r, PREFIXES)
    add_retrieval_routes(r)
    keys.add_routes(r)
    people_api.add_routes(r)
    activity.add_routes(r)
    health.add_routes(r)
    metrics.add_routes(r)
    openapi.add_routes(r)
    web_routes.add_routes(r)
    console.add_routes(r)
    web_oidc.add_routes(r)
    console_people.add_routes(r)
    return app


def _lifecycle(config: Config, admin_key: str, tracing: Tracing | None, settings: Settings):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        store = await open_store(config.database, lease_credit=True)
        keys = KeyService(store, admin_key=admin_key)
        watch_keys = getattr(store, "watch_keys", None)  # PostgreSQL's: several processes share the keys
        if watch_keys is not None:
            await watch_keys(keys.forget)
        await keys.ensure_admin()
        adapters = {pid: build_adapter(p) for pid, p in config.providers.items()}
        ledger = Ledger(store, hold_ttl=settings.hold_ttl)
        redis = _redis(config)
        limiter = _limiter(redis, settings.redis_prefix)
        await limiter.start()
        tracker = _health(redis, settings)
        await tracker.start()
        settle_queue = SettleQueue(ledger, spool_dir(config.database, settings.spool_dir))
        await settle_queue.start()
        meters = Metrics([m for m, mc in config.models.items() if mc.endpoints], public=settings.metrics_public,
                         token=config.metrics_token)  # fmt: skip
        affinity = _affinity(redis, settings)
        gateway = Gateway(
            config, adapters, ledger, tracker, limiter, settings.settle_wait, settle_queue, meters, tracing, affinity,
            _issuers(redis, settings),
        )  # fmt: skip
        cache_sweeper = _response_cache(config, gateway, store, redis, settings)
        app[STATE] = State(config, gateway, keys, store, tracker)
        app[console.SESSIONS] = Sessions(store, keys, login_secret=login_secret(admin_key))
        app[web_routes.WEB] = web_routes.Web(config, PageSources(store, tracker), Renderer())
        web_oidc.setup(app, config.oidc)
        stored = app[responses.STORED] = StoredResponses(store, config.responses_retention_days)
        sweeper = asyncio.ensure_future(_sweep_holds(ledger, settings.hold_sweep))
        stored_sweeper = asyncio.create_task(stored.sweeper(), name="stored-responses-sweeper")
        gauges = asyncio.ensure_future(_endpoint_gauges(config, tracker, meters))
        flusher = app[stats.FLUSHER] = stats.HealthFlusher(tracker, store, config)
        flusher.start(settings.health_flush)
        try:
            yield
        finally:
            for task in (sweeper, stored_sweeper, gauges, *([cache_sweeper] if cache_sweeper else [])):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gateway.drain()
            await settle_queue.close()  # what the database still refuses stays spooled
            await flusher.close()  # after the drain: the last requests' health is written too
            await tracker.close()
            await limiter.close()
            if redis is not None:
                await redis.aclose()
            for a in adapters.values():
                await a.close()
            await store.close()
            if tracing is not None:
                await asyncio.to_thread(tracing.close)  # flushes the spans still batched

    return ctx


async def _endpoint_gauges(config: Config, tracker: HealthTracker, meters: Metrics) -> None:
    """Keep /metrics' endpoint gauges current (a scrape may land on any worker, so each worker
    writes its own view; see observe.metrics)."""
    while True:
        for mid, model in config.models.items():
            for ep in model.endpoints:
                meters.endpoint(mid, ep.provider, tracker.state(endpoint_key(mid, ep)))
        await asyncio.sleep(GAUGE_EVERY)


def _redis(config: Config) -> Redis | None:
    """The one pooled Redis client of this gateway when `redis:` is configured (closed at shutdown)."""
    if not config.redis:
        return None
    from keeprouter.limits.redis_limiter import redis_client  # imports redis only when it is used

    return redis_client(config.redis)


def _limiter(redis: Redis | None, prefix: str | None) -> RateLimiter:
    """Rate limits in Redis when `redis:` is configured (falling back to this process's counters
    while it is away), else in this process. `prefix` (KEEPROUTER_REDIS_PREFIX) prefixes every key
    this gateway writes in Redis."""
    if redis is None:
        return MemoryLimiter()
    from keeprouter.limits.failover import FailoverLimiter
    from keeprouter.limits.redis_limiter import DEFAULT_PREFIX, RedisLimiter

    return FailoverLimiter(RedisLimiter(redis, prefix=prefix or DEFAULT_PREFIX), MemoryLimiter())


def _affinity(redis: Redis | None, settings: Settings) -> AffinityTable:
    """Conversation affinity: in Redis when it is configured (shared by every instance; this
    process's memory while Redis does not answer), else in this process's memory, at most
    `settings.affinity_max_entries` conversations."""
    local = MemoryAffinity(settings.affinity_max_entries)
    if redis is None:
        return local
    from keeprouter.routing.affinity.redis_table import DEFAULT_PREFIX, RedisAffinity

    prefix = settings.redis_prefix
    return RedisAffinity(redis, prefix=prefix + "af:" if prefix else DEFAULT_PREFIX, fallback=local)


def _issuers(redis: Redis | None, settings: Settings) -> SignatureIssuers | None:
    """Which endpoint issued each piece of reasoning state: shared through Redis when it is
    configured (routing.shared_issuers), else the gateway's own in-process table (None)."""
    if redis is None:
        return None
    from keeprouter.routing.shared_issuers import DEFAULT_PREFIX, SharedIssuers

    prefix = settings.redis_prefix
    return SharedIssuers(redis, prefix=prefix + "sig:" if prefix else DEFAULT_PREFIX)


def _response_cache(
    config: Config, gateway: Gateway, store: Store, redis: Redis | None, settings: Settings
) -> asyncio.Task[None] | None:
    """The response cache when configured (`gateway.response_cache` stays None otherwise): in Redis
    when it is configured, else in the database; returns the task that bounds it."""
    rc = config.response_cache
    if rc is None:
        return None
    from keeprouter.gateway.cache_backends import DEFAULT_PREFIX, CacheBackend, DatabaseCache, RedisCache
    from keeprouter.gateway.response_cache import ResponseCache

    backend: CacheBackend = DatabaseCache(store, rc.max_entries)
    if redis is not None:
        prefix = settings.redis_prefix
        backend = RedisCache(redis, rc.max_entries, prefix=prefix + "rc:" if prefix else DEFAULT_PREFIX)
    gateway.response_cache = ResponseCache(config, backend, gateway)
    return asyncio.create_task(backend.sweeper(), name="response-cache-sweeper")


def _health(redis: Redis | None, settings: Settings) -> HealthTracker:
    """Endpoint health: circuits shared through Redis when it is configured (routing.shared_health),
    else per process; an open circuit waits `settings.circuit_cooldown` before its half-open probe."""
    cooldown = settings.circuit_cooldown
    if redis is None:
        return HealthTracker(cooldown=cooldown)
    from keeprouter.routing.shared_health import DEFAULT_PREFIX, SharedHealth

    prefix = settings.redis_prefix
    return SharedHealth(redis, prefix=prefix + "hl:" if prefix else DEFAULT_PREFIX, cooldown=cooldown)


def spool_dir(database_url: str, base: Path | None) -> Path:
    """Where settles the database refused are spooled (billing.settle_queue): under `base`
    (KEEPROUTER_SPOOL_DIR; None: ~/.local/state/keeprouter/spool), one directory per database URL,
    so two deployments on one host never replay each other's settles."""
    root = base if base is not None else Path.home() / ".local" / "state" / "keeprouter" / "spool"
    return root / hashlib.sha256(database_url.encode()).hexdigest()[:16]


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
