"""The response cache (off by default): an identical request of the same owner answered again from
the answer kept the first time, free, in the caller's own client API and streamed if it asks.

- **On** when `response_cache:` is configured (every model) or a model sets its own
  `response_cache: {ttl}`; a model with `ttl: 0` stays out. With the cache on, a request opts out
  with `Cache-Control: no-store` (or `X-KeepRouter-Cache: false`) and in, on a model the cache does
  not cover, with `X-KeepRouter-Cache: true`. Off, the gateway holds None here and the request path
  checks that one attribute.
- **Key**: the owner (the key's user, else its team, else the key itself: never shared between
  owners) and a BLAKE2b digest of the canonical request with every dict's keys sorted: model,
  messages, system, tools, tool choice, sampling and output settings, everything the client API
  kept verbatim, plus the models to try and the `provider` preferences. Whether it streams is not
  part of it (a whole answer may be replayed as a stream and the other way round), nor is the
  client API unless it kept fields verbatim for its own format.
- **A hit** is admitted like any request (allowlists, rate limits, a credit hold) for the endpoint
  that gave the answer, then costs nothing: recorded as a generation marked `cached`, with the
  original answer's token counts. **A miss** keeps the answer once it is complete and ended well
  (a whole answer as it arrives; a stream when it ends), in a task of its own.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from decimal import Decimal
from typing import Any, Protocol, TypeVar, cast

import msgspec

from keeprouter.billing.pricing import ZERO
from keeprouter.config import Config, ModelConfig
from keeprouter.errors import GatewayError
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent, Usage
from keeprouter.formats.replay import answer_of, events_of
from keeprouter.gateway.attempts import FirstEvent, Mode, WholeAnswer
from keeprouter.gateway.cache_backends import CacheBackend
from keeprouter.gateway.counting import Counting
from keeprouter.gateway.live_stream import LiveStream, StreamOwner
from keeprouter.gateway.metering import Attempt, CacheNote, Completion, Metering
from keeprouter.routing.fit import SignatureIssuers
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.select import Candidate
from keeprouter.store.base import GenerationStatus, KeyRecord

log = logging.getLogger("keeprouter")
DEFAULT_TTL = 300.0  # for a request that opts in on a model the cache does not cover
MAX_ANSWER_BYTES = 1 << 20  # a longer answer is not kept
MAX_EVENTS = 50_000  # a stream longer than this is not kept (bounds what a stream holds in memory)
HEADER = "X-KeepRouter-Cache"
_YES = frozenset({"true", "1", "yes", "on"})
_NO = frozenset({"false", "0", "no", "off"})
_KEY = msgspec.json.Encoder(order="sorted")  # dicts with sorted keys: the digest ignores key order
H = TypeVar("H")
R = TypeVar("R")
T = TypeVar("T")
Reserve = Callable[[Metering, list[Candidate]], Awaitable[None]]


class CachedAnswer(msgspec.Struct, kw_only=True):
    """What is kept: the answer and the endpoint that gave it (the hit is billed, at 0, to it)."""

    model: str
    provider: str
    endpoint_model: str
    response: ChatResponse


_DECODE = msgspec.json.Decoder(CachedAnswer)


class Routed(Protocol):
    """What the cache reads of the gateway's route (gateway.Route is one)."""

    @property
    def models(self) -> list[ModelConfig]: ...
    @property
    def body(self) -> Mapping[str, Any]: ...


class CacheOwner(StreamOwner, Protocol):
    """What the cache needs of the gateway (the gateway is one, structurally)."""

    @property
    def settle_later(self) -> Callable[[Coroutine[Any, Any, None]], Any]: ...


class ResponseCache:
    def __init__(self, config: Config, backend: CacheBackend, owner: CacheOwner) -> None:
        rc = config.response_cache
        self.ttl = rc.ttl if rc is not None else None  # None: only the models that set their own
        self.backend = backend
        self.owner = owner
        self._whole = KeptWhole(owner.health, owner.issuers, owner.counting, self)
        self._first = KeptFirstEvent(owner, self)

    def note(self, meter: Metering, route: Routed) -> CacheNote | None:
        """The request's cache key and TTL, or None when it does not use the cache."""
        headers = meter.caller.headers
        asked = headers.get(HEADER)
        asked = asked.strip().lower() if asked is not None else None
        if asked in _NO or "no-store" in headers.get("Cache-Control", "").lower():
            return None
        own = route.models[0].response_cache_ttl
        ttl = own if own is not None else self.ttl
        if ttl is None and asked in _YES:
            ttl = DEFAULT_TTL
        if not ttl:  # not covered and not asked, or the model keeps out (`ttl: 0`)
            return None
        return CacheNote(request_key(meter.caller.key, meter.request, route), ttl)

    async def answer(self, meter: Metering, route: Routed, stream: bool, reserve: Reserve) -> Any:
        """A hit (a Completion, or a LiveStream when `stream`), admitted and ready to settle; None
        on a miss or when the request does not use the cache (`meter.cache` says which)."""
        note = meter.cache = self.note(meter, route)
        if note is None:
            return None
        try:
            raw = await self.backend.get(note.key)
            kept = _DECODE.decode(raw) if raw is not None else None
        except (msgspec.DecodeError, msgspec.ValidationError):
            kept = None  # written by another version: a miss, overwritten by this answer
        except Exception as e:  # the backend is away: a miss, never a failure
            log.warning("reading the response cache failed: %s", e)
            kept = None
        cand = None if kept is None else _candidate(kept, route)
        if kept is None or cand is None or (stream and kept.response.more_choices):
            return None
        await reserve(meter, [cand])  # the key's allowlists, rate limits and credit, as always
        note.hit = True
        now = time.monotonic()
        attempt = meter.served = Attempt(cand, now, first_token_at=now)
        resp = kept.response
        if not stream:
            return Completion(resp, cand, ZERO, meter)
        events = events_of(resp)
        return ReplayedStream(self.owner, meter, attempt, events[0], _each(events[1:]))

    def mode(self, meter: Metering, mode: Mode[H, R, T]) -> Mode[H, R, T]:
        """`mode`, keeping the answer when the request missed the cache."""
        if meter.cache is None:
            return mode
        if isinstance(mode, FirstEvent):
            return cast(Mode[H, R, T], self._first)
        if isinstance(mode, WholeAnswer):
            return cast(Mode[H, R, T], self._whole)
        return mode

    def keep(self, meter: Metering, cand: Candidate, resp: ChatResponse) -> None:
        """Keep an answer that ended well, in a task of its own (drained at shutdown)."""
        note = meter.cache
        if note is None or note.hit or resp.stop_reason in (None, "error"):
            return
        ep = cand.endpoint
        kept = CachedAnswer(model=cand.model.id, provider=ep.provider, endpoint_model=ep.model, response=resp)
        raw = msgspec.json.encode(kept)
        if len(raw) <= MAX_ANSWER_BYTES:
            self.owner.settle_later(self._put(note.key, raw, note.ttl))

    async def _put(self, key: str, raw: bytes, ttl: float) -> None:
        try:
            await self.backend.put(key, raw, ttl)
        except Exception as e:  # an answer not kept is only a later miss
            log.warning("writing the response cache failed: %s", e)


def owner_of(key: KeyRecord) -> str:
    """Whose cache a request reads: the key's user, else its team, else the key alone."""
    if key.user_id:
        return "u:" + key.user_id
    if key.team_id:
        return "t:" + key.team_id
    return "k:" + key.hash


def request_key(key: KeyRecord, req: ChatRequest, route: Routed) -> str:
    """`owner:digest` of the canonical request (see the module docstring for what it covers)."""
    # The client API matters only through what it kept verbatim for an upstream of its own format:
    # without such fields, the same request through any client API is one request.
    verbatim = req.extra or req.server_tools or req.thinking_config is not None
    source = req.source if verbatim else "openai"
    canonical = msgspec.structs.replace(req, stream=False, include_usage=False, echo=None, source=source)
    h = hashlib.blake2b(_KEY.encode(canonical), digest_size=32)
    h.update(_KEY.encode([[m.id for m in route.models], route.body.get("provider")]))
    return f"{owner_of(key)}:{h.hexdigest()}"


def _candidate(kept: CachedAnswer, route: Routed) -> Candidate | None:
    """The endpoint that gave the kept answer, if this request may still be routed to it."""
    for model in route.models:
        if model.id == kept.model:
            for ep in model.endpoints:
                if ep.provider == kept.provider and ep.model == kept.endpoint_model:
                    return Candidate(model, ep)
    return None


async def _each(events: list[StreamEvent]) -> AsyncGenerator[StreamEvent, None]:
    for ev in events:
        yield ev


class ReplayedStream(LiveStream):
    """A hit replayed as a stream: free, and no upstream's health is touched."""

    def cost(self, u: Usage | None = None) -> Decimal:
        return ZERO

    async def finish(self, status: GenerationStatus, error: GatewayError | None = None) -> None:
        finish = "error" if status == "error" else self.finish_reason
        await self.owner.settler.record(self.meter, self.final_usage(), ZERO, status, finish, streamed=True,
                                        error=error.message if error else None)  # fmt: skip


class KeptStream(LiveStream):
    """A missed stream whose events are kept, to be cached as a whole answer when it ends well."""

    def __init__(
        self, owner: StreamOwner, meter: Metering, served: Attempt, first: StreamEvent,
        it: AsyncGenerator[StreamEvent, None], cache: ResponseCache,
    ) -> None:  # fmt: skip
        super().__init__(owner, meter, served, first, it)
        self.cache = cache
        self._kept: list[StreamEvent] | None = []

    def observe(self, ev: StreamEvent) -> StreamEvent:
        kept = self._kept  # every event passes here, however the stream is read
        if kept is not None:
            kept.append(ev)
            if len(kept) > MAX_EVENTS:
                self._kept = None
        return super().observe(ev)

    async def finish(self, status: GenerationStatus, error: GatewayError | None = None) -> None:
        await super().finish(status, error)
        kept = self._kept
        if status == "ok" and kept:
            self.cache.keep(self.meter, self.candidate, answer_of(kept, self.final_usage()))


class KeptFirstEvent(FirstEvent):
    """`open_stream` on a miss: the stream is a KeptStream."""

    def __init__(self, owner: StreamOwner, cache: ResponseCache) -> None:
        super().__init__(owner)
        self.cache = cache

    def served(
        self, meter: Metering, attempt: Attempt, handle: AsyncGenerator[StreamEvent, None], first: StreamEvent
    ) -> LiveStream:
        return KeptStream(self.owner, meter, attempt, first, handle, self.cache)


class KeptWhole(WholeAnswer):
    """`complete` on a miss: the whole answer is kept as it arrives."""

    def __init__(
        self, health: HealthTracker, issuers: SignatureIssuers, counting: Counting, cache: ResponseCache
    ) -> None:
        super().__init__(health, issuers, counting)
        self.cache = cache

    def served(
        self, meter: Metering, attempt: Attempt, handle: Coroutine[Any, Any, ChatResponse], first: ChatResponse
    ) -> Completion:
        done = super().served(meter, attempt, handle, first)
        self.cache.keep(meter, done.candidate, done.response)
        return done


__all__ = ["HEADER", "CachedAnswer", "ResponseCache", "owner_of", "request_key"]
