"""The request path in one readable place: resolve -> select -> admit -> attempts (with fallback)
-> meter -> settle.

The API layer hands the gateway a canonical `ChatRequest` and who is calling; the gateway returns a
`Completion` (whole answer) or a `LiveStream` (first events already received, so every failure
before the first byte could still fall back or become a proper HTTP error). Both go through ONE
attempt loop (`_serve`); `attempts.py` says what an attempt is in each mode. The API layer then
settles (settle.py) before the answer's last byte leaves, within a bounded wait.

During a database outage nothing new is admitted: the key lookup or the credit hold raises
StoreUnavailable, a 503 in the caller's format, within the store's timeouts.

Admission (`_reserve`, shared by every client API): rate limits first (429; a key without any skips
the limiter), reserving the worst case the credit hold prices, then the credit hold (402); a refused
request holds nothing and reaches no upstream. The tokens are settled to the real count with the ledger.

Billing rule: cost = tokens x the serving endpoint's price. A generation that produced no output
(failed before any token) costs nothing; a stream cut by the client or the upstream is billed for
what was produced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from keeprouter.billing import pricing
from keeprouter.billing.ledger import Ledger
from keeprouter.billing.settle_queue import SettleQueue
from keeprouter.config import Config, ModelConfig
from keeprouter.errors import InvalidRequest, NoEndpointAvailable, NotFound, StoreUnavailable, UpstreamError
from keeprouter.formats import tokens
from keeprouter.formats.canonical import ChatRequest, Reasoning
from keeprouter.formats.embeddings import EmbeddingRequest, EmbeddingResponse, RerankRequest, RerankResponse
from keeprouter.gateway import retrieval, spans
from keeprouter.gateway.attempts import (
    MAX_ATTEMPTS,
    MAX_RETRY_SECONDS,
    FirstEvent,
    Mode,
    WholeAnswer,
    exhausted,
    failed,
)
from keeprouter.gateway.counting import Counting
from keeprouter.gateway.live_stream import LiveStream
from keeprouter.gateway.metering import Attempt, Caller, Completion, Metering
from keeprouter.gateway.response_cache import ResponseCache
from keeprouter.gateway.retrieval import Retrieval, Retrieved, Sizing, stand_in
from keeprouter.gateway.settle import SETTLE_WAIT, Settler
from keeprouter.limits.base import Limits, RateLimiter, Refusal, Ticket
from keeprouter.limits.memory import MemoryLimiter
from keeprouter.observe.logs import GENERATION_ID
from keeprouter.policy import OwnerPolicy
from keeprouter.providers.base import Adapter
from keeprouter.providers.registry import dropped_fields
from keeprouter.routing.affinity import AffinityTable, MemoryAffinity, Sticky
from keeprouter.routing.fit import SignatureIssuers, dropped, fit, output_budget
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.lookup import find_model
from keeprouter.routing.select import Candidate, ProviderPrefs, parse_prefs, plan

if TYPE_CHECKING:
    from keeprouter.observe.metrics import Metrics
    from keeprouter.observe.tracing import Tracing

MAX_OUTPUT_FALLBACK = 4096  # worst-case output for reservations when neither request nor catalogue bounds it
log = logging.getLogger("keeprouter")
VARIANT_SORT = {"nitro": "throughput", "floor": "price"}
H = TypeVar("H")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(slots=True)
class Route:
    models: list[ModelConfig]
    prefs: ProviderPrefs
    body: Mapping[str, Any] = field(default_factory=dict)  # the JSON body: names affinity reads


class Gateway:
    def __init__(
        self,
        config: Config,
        adapters: Mapping[str, Adapter],
        ledger: Ledger,
        health: HealthTracker,
        limiter: RateLimiter | None = None,
        settle_wait: float = SETTLE_WAIT,
        settle_queue: SettleQueue | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        affinity: AffinityTable | None = None,
        issuers: SignatureIssuers | None = None,
    ) -> None:
        self.config = config
        self.adapters = adapters
        self.ledger = ledger
        self.health = health
        self.limiter: RateLimiter = limiter if limiter is not None else MemoryLimiter()
        self.owners = OwnerPolicy(ledger, self.limiter)  # model allowlists, user and team rpm_limit
        self.settle_wait = settle_wait  # how long an answer waits for its ledger write
        self.settle_queue = settle_queue if settle_queue is not None else SettleQueue(ledger)
        self.metrics = metrics  # counted where generations settle (Settler.record), whatever the client API
        self.tracing = tracing  # None unless OpenTelemetry is configured
        # Which endpoint issued each piece of reasoning state (routing.fit; shared through Redis
        # when it is configured, routing.shared_issuers), so a fallback never gets another's.
        self.issuers = issuers if issuers is not None else SignatureIssuers()
        self.settler = Settler(ledger, self.limiter, self.settle_queue, metrics)
        # Run a settle that must survive the caller's cancellation (Settler.settle_later): the
        # bound method itself, so the API layer's call per request costs no extra frame.
        self.settle_later: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]] = self.settler.settle_later
        self.counting = Counting(adapters, self.settle_later)
        self._whole = WholeAnswer(health, self.issuers, self.counting)
        self._first_event = FirstEvent(self)
        # Conversation affinity: a conversation's turns stay on the endpoint that served the last
        # one, so the provider's prompt cache stays warm (routing.affinity).
        self.sticky = Sticky(affinity if affinity is not None else MemoryAffinity(), health.is_open)
        self.response_cache: ResponseCache | None = None  # set by create_app when configured (off by default)

    # ---- resolve ------------------------------------------------------------------------
    def route(self, body: Mapping[str, Any], req: ChatRequest) -> Route:
        """The models to try (the `model`, then the `models` fallbacks) and the caller's prefs."""
        return self.route_for(body, req.model, "text->text", req)

    def route_for(self, body: Mapping[str, Any], model_id: str, modality: str, req: ChatRequest | None = None) -> Route:
        """`route` for a call that `modality`'s models serve: a model of another modality is the
        caller's mistake (400, naming both), never an upstream's confusing error. `req` (chat only)
        takes the `:thinking` variant's reasoning."""
        prefs = parse_prefs(body.get("provider"))
        ids: list[str] = [model_id] if model_id else []
        extra = body.get("models")
        if extra is not None:
            if not isinstance(extra, list) or not all(isinstance(m, str) for m in extra):
                raise InvalidRequest("models: must be a list of model ids")
            ids += [m for m in extra if m not in ids]
        if req is not None:  # as the client API's parser read them
            ids += [m for m in req.fallback_models if m not in ids]
        if not ids:
            raise InvalidRequest("model: required")
        models: list[ModelConfig] = []
        for mid in ids:
            found = find_model(self.config.models, mid)
            if found is None:
                if mid == ids[0] and len(ids) == 1:
                    raise NotFound(f"model '{mid}' does not exist")
                continue
            model, variant = found
            if model.modality != modality:
                if mid == ids[0]:
                    raise InvalidRequest(_wrong_modality(model.id, model.modality, modality), param="model")
                continue  # a fallback of another kind is skipped, as an unknown one is
            if variant in VARIANT_SORT and prefs.sort is None:
                prefs.sort = VARIANT_SORT[variant]
            elif (
                variant == "thinking"
                and req is not None
                and mid == ids[0]
                and (req.reasoning is None or not req.reasoning.on)
            ):
                exclude = req.reasoning is not None and req.reasoning.exclude
                req.reasoning = Reasoning(exclude=exclude)  # OpenRouter's variant: reasoning on
            models.append(model)
        if not models:
            raise NotFound(f"none of the models {ids} exist")
        return Route(models, prefs, body)

    # ---- answer -------------------------------------------------------------------------
    def complete(self, caller: Caller, req: ChatRequest, route: Route) -> Coroutine[Any, Any, Completion]:
        """The whole answer of the first endpoint that gives one; failures fall back. Await it."""
        return self._serve(caller, req, route, self._whole)

    def open_stream(self, caller: Caller, req: ChatRequest, route: Route) -> Coroutine[Any, Any, LiveStream]:
        """Try endpoints until one produces its first event; failures up to then fall back. Await it."""
        return self._serve(caller, req, route, self._first_event)

    def embed(
        self, caller: Caller, req: EmbeddingRequest, route: Route
    ) -> Coroutine[Any, Any, Retrieved[EmbeddingResponse]]:
        """Vectors for `req` from the first endpoint that gives them; failures fall back. Await it."""
        call, sizing = retrieval.embedding(req)
        return self._serve(caller, stand_in(req.model), route, Retrieval(self.health, call), sizing)

    def rerank(
        self, caller: Caller, req: RerankRequest, route: Route
    ) -> Coroutine[Any, Any, Retrieved[RerankResponse]]:
        """Relevance scores for `req` from the first endpoint that gives them; failures fall back."""
        call, sizing = retrieval.rerank(req)
        return self._serve(caller, stand_in(req.model), route, Retrieval(self.health, call), sizing)

    async def _serve(
        self, caller: Caller, req: ChatRequest, route: Route, mode: Mode[H, R, T], sizing: Sizing | None = None
    ) -> T:
        """THE attempt loop, for every mode: endpoints in the planned order, bounded in count and
        in total time, until one gives its first result; a refused or failed request holds nothing.
        `sizing`: a request that produces no tokens (embeddings, rerank), sized by its inputs."""
        meter = self._begin(caller, req, sizing)
        cache = self.response_cache
        if cache is not None and sizing is None:  # off by default: this one check (gateway.response_cache)
            hit = await cache.answer(meter, route, isinstance(mode, FirstEvent), self._reserve)
            if hit is not None:
                return cast(T, hit)
            mode = cache.mode(meter, mode)  # a miss keeps its answer
        cands = self._candidates(meter, route, sizing)
        # Affinity keeps a conversation's prompt cache warm: embeddings and rerank have none.
        conv = None
        if sizing is None:
            conv = self.sticky.conversation(
                req, route.models, route.prefs, caller.headers, route.body, caller.key.hash, meter.prompt_estimate
            )
        cands = await self.sticky.order(cands, conv)
        if self.issuers.shared and sizing is None:
            await self.issuers.learn(req)  # one MGET, only for reasoning state this process never saw
        await self._reserve(meter, cands)
        try:
            deadline = meter.started + MAX_RETRY_SECONDS
            tried = 0
            for cand in cands:
                ep = cand.endpoint
                adapter = self.adapters.get(ep.provider)
                if adapter is None:
                    continue
                t0 = time.monotonic()
                if tried and (tried == MAX_ATTEMPTS or t0 > deadline):
                    break
                tried += 1
                attempt = Attempt(cand, t0)
                handle = mode.open(adapter, self._fit(meter, attempt, adapter), ep, caller.headers)
                span = spans.start_attempt(self.tracing, self.config, cand, req.max_tokens)
                try:
                    first = await mode.first(handle)
                except BaseException as e:
                    err = UpstreamError("provider sent an empty stream") if isinstance(e, StopAsyncIteration) else e
                    if span is not None:
                        spans.end_attempt(self.tracing, span, err)
                    closing = mode.close(handle)
                    if closing is not None:
                        await closing
                    if not isinstance(err, UpstreamError):
                        raise
                    failed(meter, attempt, err, self.health)
                    continue
                if span is not None:
                    spans.end_attempt(self.tracing, span, None, first)
                meter.served = attempt
                await self.sticky.served(conv, cand, req)
                return mode.served(meter, attempt, handle, first)
            raise exhausted(meter)
        except BaseException:
            await self._release(meter)
            raise

    async def settle(self, done: Completion) -> None:
        """Record the generation and settle its hold; the API layer waits for it (bounded by
        SETTLE_WAIT) before the answer's last byte leaves."""
        resp = done.response
        await self.settler.record(done.meter, resp.usage, done.cost, "ok", resp.stop_reason, streamed=False)

    async def settle_retrieved(self, done: Retrieved[Any]) -> None:
        """`settle` for an embeddings or rerank answer."""
        await self.settler.record(done.meter, done.response.usage, done.cost, "ok", None, streamed=False)

    # ---- admit --------------------------------------------------------------------------
    def _begin(self, caller: Caller, req: ChatRequest, sizing: Sizing | None = None) -> Metering:
        gen_id = self.ledger.ids.generation_id(time.time())
        GENERATION_ID.set(gen_id)  # every log line of this request from here on carries it
        if sizing is not None:
            return Metering(gen_id, caller, req, sizing.estimate, None, time.monotonic(), output_bound=0)
        return Metering(gen_id, caller, req, tokens.estimate_request(req), None, time.monotonic())

    def _candidates(self, meter: Metering, route: Route, sizing: Sizing | None = None) -> list[Candidate]:
        prompt = meter.prompt_estimate if sizing is None else sizing.longest
        cands = plan(route.models, meter.request, route.prefs, prompt, self.health)
        if not any(c.endpoint.provider in self.adapters for c in cands):
            raise NoEndpointAvailable("no provider is configured for this model")
        return cands

    async def _reserve(self, meter: Metering, cands: list[Candidate]) -> None:
        """Admit the request: rate limits (429), then the credit hold (402); either refusal leaves
        nothing behind."""
        key = meter.caller.key
        outputs = [(c, self._max_output(meter, c)) for c in cands]
        if key.rpm_limit is not None or key.tpm_limit is not None:
            budget = meter.prompt_estimate + max(out for _, out in outputs)
            limits = Limits(key.rpm_limit, key.tpm_limit)
            try:
                admitted = await self.limiter.admit(meter.gen_id, key.hash, limits, budget)
            except asyncio.CancelledError:  # the client left while Redis answered: undo a possible entry
                self.settle_later(self.limiter.release(Ticket(meter.gen_id, key.hash, budget)))
                raise
            if isinstance(admitted, Refusal):
                raise admitted.error()
            meter.ticket = admitted
        worst = max(pricing.worst_case(meter.prompt_estimate, out, c.endpoint.pricing) for c, out in outputs)
        try:
            if key.user_id is None and key.team_id is None and not key.models:  # nothing for the policy to check
                meter.hold = await self.ledger.reserve(key, worst)
            else:
                async with self.owners.admitted(key, [c.model.id for c in cands], meter.gen_id):  # 403, 429
                    meter.hold = await self.ledger.reserve(key, worst)
        except BaseException:
            if meter.ticket is not None:  # refused for credit: it was never admitted
                ticket, meter.ticket = meter.ticket, None
                await self.limiter.release(ticket)
            raise

    @staticmethod
    def _max_output(meter: Metering, c: Candidate) -> int:
        """The most output `c` may produce: the budget `fit` will send it (the request's, lowered to
        the endpoint's limits), else the endpoint's bounds."""
        if meter.output_bound is not None:
            return meter.output_bound
        ep = c.endpoint
        budget = output_budget(meter.request.max_tokens, meter.prompt_estimate, ep)
        if budget:
            return budget
        return ep.max_output_tokens or min(ep.context_length or MAX_OUTPUT_FALLBACK, MAX_OUTPUT_FALLBACK * 4)

    def _fit(self, meter: Metering, attempt: Attempt, adapter: Adapter) -> ChatRequest:
        """The request as the attempt's endpoint gets it. A max_tokens lowered to fit the context is not told to
        the caller (it asked for a ceiling, not a length) but is recorded on the generation, in the
        serving attempt's entry of `provider_responses`. The fields the endpoint's wire format cannot
        carry are noted on the attempt (`Attempt.dropped`, the X-KeepRouter-Dropped header)."""
        req = meter.request
        sent = fit(req, attempt.candidate.endpoint, self.issuers, meter.prompt_estimate)
        if sent.max_tokens != req.max_tokens:
            attempt.max_tokens_sent = sent.max_tokens
        unsent = dropped_fields(adapter.api, sent, attempt.candidate.endpoint.model)
        attempt.dropped = dropped(req, sent) + tuple(unsent)
        return sent

    async def _release(self, meter: Metering) -> None:
        if meter.hold is not None:
            hold, meter.hold = meter.hold, None
            try:
                await self.ledger.release(hold)
            except StoreUnavailable:  # the caller's own error matters more; the hold expires
                log.warning("releasing hold %s failed: the database is unavailable", hold.id)
        if meter.ticket is not None:  # admitted but produced nothing: the request counts, no tokens
            ticket, meter.ticket = meter.ticket, None
            await self.limiter.settle(ticket, 0)

    # ---- settle (settle.py) ----------------------------------------------------------------
    @property
    def settling(self) -> int:
        """Settles not yet committed (the answer may already be out), queued ones included."""
        return self.settler.settling

    async def drain(self, seconds: float = 60.0) -> bool:
        """Wait for every settle to commit or be queued, then for the queue to empty (Settler.drain)."""
        return await self.settler.drain(seconds)

    # ---- count (counting.py) --------------------------------------------------------------
    async def count_input(self, models: list[ModelConfig], req: ChatRequest, headers: Mapping[str, str]) -> int:
        """`count_tokens`: the upstream's count, else the shipped tokenizer's, else the estimate."""
        return await self.counting.count_input(models, req, headers)


_MODALITY_USE = {
    "text->text": "a chat model: call POST /v1/chat/completions",
    "text->embedding": "an embedding model: call POST /v1/embeddings",
    "text->rerank": "a rerank model: call POST /v1/rerank",
}


def _wrong_modality(model: str, has: str, wanted: str) -> str:
    return f"model '{model}' ({has}) is {_MODALITY_USE.get(has, has)}; this endpoint serves {wanted} models"


__all__ = ["Gateway", "Route"]
