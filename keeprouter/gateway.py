"""The request path in one readable place: resolve -> select -> rate limits -> reserve -> call (with
fallback) -> meter -> settle.

The API layer hands the gateway a canonical `ChatRequest` and who is calling; the gateway returns a
`Completion` (whole answer) or a `LiveStream` (first events already received, so every failure
before the first byte could still fall back or become a proper HTTP error). The API layer settles
(records the generation) BEFORE the answer's last byte leaves, waiting at most a bounded time
(`SETTLE_WAIT`, KEEPROUTER_SETTLE_WAIT_SECONDS): a client that received its answer in full is in
the ledger even if the process is killed right after. When the database is slower than that, the
answer goes out anyway and the settle keeps running: recorded late. A settle the database refuses
(an outage: StoreUnavailable, or any other failure) is handed to the settle queue
(billing.settle_queue), spooled to a local file before the answer leaves and retried until the
database takes it, so during an outage answers already produced go out at once and are recorded
when it returns, even if this process dies meanwhile; shutdown waits for both (`drain`).

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
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from keeprouter.billing import pricing
from keeprouter.billing.ledger import Hold, Ledger
from keeprouter.billing.settle_queue import SettleQueue
from keeprouter.config import Config, EndpointConfig, ModelConfig
from keeprouter.errors import (
    GatewayError,
    InvalidRequest,
    NoEndpointAvailable,
    NotFound,
    StoreUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from keeprouter.formats import tokens
from keeprouter.formats.canonical import (
    ChatRequest,
    ChatResponse,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from keeprouter.formats.embeddings import (
    EmbeddingRequest,
    EmbeddingResponse,
    RerankRequest,
    RerankResponse,
    estimate_embedding_tokens,
    estimate_rerank_tokens,
)
from keeprouter.limits.base import Limits, RateLimiter, Refusal, Ticket
from keeprouter.limits.memory import MemoryLimiter
from keeprouter.live_stream import LiveStream
from keeprouter.observe.logs import GENERATION_ID
from keeprouter.providers.base import Adapter
from keeprouter.providers.retrieval import Embedder, Reranker
from keeprouter.routing.fit import SignatureIssuers, fit, output_budget
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.select import Candidate, ProviderPrefs, parse_prefs, plan
from keeprouter.store.base import GenerationRecord, GenerationStatus, KeyRecord

if TYPE_CHECKING:
    from keeprouter.observe.metrics import Metrics
    from keeprouter.observe.tracing import Tracing

MAX_ATTEMPTS = 5  # endpoints tried per request, across models
MAX_RETRY_SECONDS = 120.0  # no new attempt starts after this long
log = logging.getLogger("keeprouter.gateway")
MAX_OUTPUT_FALLBACK = 4096  # worst-case output for reservations when neither request nor catalogue bounds it
SETTLE_WAIT = 5.0  # seconds an answer's last byte may wait for its ledger write (then it goes anyway)
log = logging.getLogger("keeprouter")
_DATE_SUFFIX = re.compile(r"-\d{8}$")
VARIANT_SORT = {"nitro": "throughput", "floor": "price"}


@dataclass(slots=True)
class Caller:
    """Who is calling, through which client API (the admin key has a key record too, unlimited)."""

    api: str
    key: KeyRecord
    headers: Mapping[str, str]
    app: str | None = None
    app_title: str | None = None


@dataclass(slots=True)
class Route:
    models: list[ModelConfig]
    prefs: ProviderPrefs


@dataclass(slots=True)
class Metering:
    """Everything the ledger needs once the answer is out."""

    gen_id: str
    caller: Caller
    request: ChatRequest
    prompt_estimate: int
    hold: Hold | None
    started: float
    attempts: list[dict[str, Any]] = field(default_factory=list)
    last_error: UpstreamError | None = None
    candidate: Candidate | None = None
    first_token_at: float | None = None
    ticket: Ticket | None = None  # the rate limiter's entry, for keys with rpm/tpm limits
    budget_cut: int | None = None  # the max_tokens sent to the serving endpoint, when lowered
    output_bound: int | None = None  # the most output any endpoint may produce, when known (0: none)


A = TypeVar("A", EmbeddingResponse, RerankResponse)


@dataclass(slots=True)
class Retrieved(Generic[A]):
    """An embeddings or rerank answer, what it costs, and what the ledger needs."""

    response: A
    candidate: Candidate
    cost: Decimal
    meter: Metering


@dataclass(slots=True)
class Completion:
    response: ChatResponse
    candidate: Candidate
    cost: Decimal
    meter: Metering


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
    ) -> None:
        self.config = config
        self.adapters = adapters
        self.ledger = ledger
        self.health = health
        self.limiter: RateLimiter = limiter if limiter is not None else MemoryLimiter()
        self._settling: set[asyncio.Task[None]] = set()
        self.settle_wait = settle_wait  # how long an answer waits for its ledger write
        self.settle_queue = settle_queue if settle_queue is not None else SettleQueue(ledger)
        self.issuers = SignatureIssuers()
        self.encodings = tokens.Encodings()
        self._loading: set[str] = set()
        self.metrics = metrics  # counted where generations settle (`record`), whatever the client API
        self.tracing = tracing  # None unless OpenTelemetry is configured

    # ---- resolve ------------------------------------------------------------------------
    def route(self, body: Mapping[str, Any], req: ChatRequest) -> Route:
        """The models to try (the `model`, then the `models` fallbacks) and the caller's prefs."""
        return self.route_for(body, req.model, "text->text")

    def route_for(self, body: Mapping[str, Any], model_id: str, modality: str) -> Route:
        """`route` for a call that `modality`'s models serve: a model of another modality is the
        caller's mistake (400, naming both), never an upstream's confusing error."""
        prefs = parse_prefs(body.get("provider"))
        ids: list[str] = [model_id] if model_id else []
        extra = body.get("models")
        if extra is not None:
            if not isinstance(extra, list) or not all(isinstance(m, str) for m in extra):
                raise InvalidRequest("models: must be a list of model ids")
            ids += [m for m in extra if m not in ids]
        if not ids:
            raise InvalidRequest("model: required")
        models: list[ModelConfig] = []
        for mid in ids:
            base, _, variant = mid.partition(":")
            model = self.config.models.get(mid) or self.config.models.get(base) or self._alias(base)
            if model is None:
                if mid == ids[0] and len(ids) == 1:
                    raise NotFound(f"model '{mid}' does not exist")
                continue
            if model.modality != modality:
                if mid == ids[0]:
                    raise InvalidRequest(_wrong_modality(model.id, model.modality, modality), param="model")
                continue  # a fallback of another kind is skipped, as an unknown one is
            if variant in VARIANT_SORT and prefs.sort is None:
                prefs.sort = VARIANT_SORT[variant]
            models.append(model)
        if not models:
            raise NotFound(f"none of the models {ids} exist")
        return Route(models, prefs)

    def _alias(self, model_id: str) -> ModelConfig | None:
        """Names clients use for a catalogue model: OpenRouter's `author/slug` ("mistralai/codestral-latest")
        and Anthropic's dated snapshots ("claude-sonnet-4-5-20250929", as Claude Code sends)."""
        models = self.config.models
        _, _, slug = model_id.rpartition("/")
        undated = _DATE_SUFFIX.sub("", slug)
        return models.get(slug) or models.get(undated)

    async def upstream_count(
        self, models: list[ModelConfig], req: ChatRequest, headers: Mapping[str, str]
    ) -> int | None:
        """An exact input-token count from the first upstream of `models[0]` that can count
        (Anthropic-format hosts), or None when none can: the caller estimates offline then."""
        for ep in models[0].endpoints:
            adapter = self.adapters.get(ep.provider)
            counter = getattr(adapter, "count_tokens", None)
            if counter is None:
                continue
            try:
                n: int = await counter(fit(req, ep), ep, headers)
                return n
            except UpstreamError:
                continue
        return None

    async def count_input(self, models: list[ModelConfig], req: ChatRequest, headers: Mapping[str, str]) -> int:
        """`count_tokens`: the upstream's own count (Anthropic-format hosts), else the exact count
        with the tokenizer of the first endpoint whose model has one shipped (OpenAI family), else
        the offline estimate. Tokenizer work runs in a worker thread, off the event loop."""
        n = await self.upstream_count(models, req, headers) if models else None
        if n is not None:
            return n
        for ep in models[0].endpoints if models else ():
            name = tokens.encoding_for(ep.model.rpartition("/")[2])
            if name is not None:
                enc = await asyncio.to_thread(self.encodings.get, name)
                exact: int = await asyncio.to_thread(tokens.count_request, req, tokens.exact_counter(enc))
                return exact
        return tokens.count_request(req)

    def exact_counter(self, ep: EndpointConfig) -> Callable[[str], int] | None:
        """The exact text counter for `ep`'s model when its tokenizer is shipped AND already loaded
        (metering a usage-less upstream never waits for a load: it starts one, in a worker thread,
        and this answer is metered with the estimate)."""
        name = tokens.encoding_for(ep.model.rpartition("/")[2])
        if name is None:
            return None
        enc = self.encodings.loaded(name)
        if enc is not None:
            return tokens.exact_counter(enc)
        if name not in self._loading:
            self._loading.add(name)
            self.settle_later(self._load_encoding(name))
        return None

    async def _load_encoding(self, name: str) -> None:
        try:
            await asyncio.to_thread(self.encodings.get, name)
        except (OSError, tokens.VocabularyError):
            log.exception("tokenizer %s could not be loaded; usage-less upstreams stay estimated", name)

    def _begin(self, caller: Caller, req: ChatRequest) -> Metering:
        gen_id = self.ledger.ids.generation_id(time.time())
        GENERATION_ID.set(gen_id)  # every log line of this request from here on carries it
        return Metering(gen_id, caller, req, tokens.estimate_request(req), None, time.monotonic())

    def _candidates(self, meter: Metering, route: Route) -> list[Candidate]:
        cands = plan(route.models, meter.request, route.prefs, meter.prompt_estimate, self.health)
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

    # ---- whole answers -------------------------------------------------------------------
    async def complete(self, caller: Caller, req: ChatRequest, route: Route) -> Completion:
        meter = self._begin(caller, req)
        cands = self._candidates(meter, route)
        await self._reserve(meter, cands)
        try:
            for cand in self._attempts(meter, cands):
                t0 = time.monotonic()
                ep = cand.endpoint
                span = self._attempt_span(meter, cand)
                try:
                    resp = await self.adapters[ep.provider].complete(self._fit(meter, cand), ep, caller.headers)
                except BaseException as e:
                    if span is not None:
                        self._end_span(span, e)
                    if not isinstance(e, UpstreamError):
                        raise
                    self._failed(meter, cand, e)
                    continue
                if span is not None:
                    u = resp.usage
                    self._end_span(span, None, resp.model, u.input_tokens, u.output_tokens)
                elapsed = time.monotonic() - t0
                meter.candidate = cand
                meter.first_token_at = time.monotonic()
                if not (resp.usage.input_tokens and resp.usage.output_tokens):
                    _fill_missing_usage(resp, meter, self.exact_counter(ep))
                for part in resp.content:
                    if isinstance(part, ThinkingPart) and (part.signature or part.redacted):
                        self.issuers.record(part.signature or part.redacted or "", ep)
                out = resp.usage.output_tokens
                self.health.success(cand.key, elapsed, out / elapsed if elapsed > 0 and out else None)
                cost = pricing.quantize(pricing.cost(resp.usage, cand.endpoint.pricing)) if out else Decimal(0)
                return Completion(resp, cand, cost, meter)
            raise self._exhausted(meter)
        except BaseException:
            await self._release(meter)
            raise

    async def settle(self, done: Completion) -> None:
        """Record the generation and settle its hold; the API layer waits for it (bounded by
        SETTLE_WAIT) before the answer's last byte leaves."""
        resp = done.response
        await self.record(done.meter, resp.usage, done.cost, "ok", resp.stop_reason, streamed=False)

    # ---- embeddings and rerank -----------------------------------------------------------
    async def embed(self, caller: Caller, req: EmbeddingRequest, route: Route) -> Retrieved[EmbeddingResponse]:
        """Vectors for `req` from the first endpoint that gives them; failures fall back."""

        def call(adapter: Adapter, ep: EndpointConfig) -> Awaitable[EmbeddingResponse]:
            if not isinstance(adapter, Embedder):
                raise UpstreamError(f"provider {ep.provider} ({adapter.api}) serves no embeddings")
            return adapter.embed(req, ep, caller.headers)

        longest = max(estimate_embedding_tokens([item]) for item in req.inputs)
        return await self._retrieve(caller, req.model, estimate_embedding_tokens(req.inputs), longest, route, call)

    async def rerank(self, caller: Caller, req: RerankRequest, route: Route) -> Retrieved[RerankResponse]:
        """Relevance scores for `req` from the first endpoint that gives them; failures fall back."""

        def call(adapter: Adapter, ep: EndpointConfig) -> Awaitable[RerankResponse]:
            if not isinstance(adapter, Reranker):
                raise UpstreamError(f"provider {ep.provider} ({adapter.api}) serves no rerank")
            return adapter.rerank(req, ep, caller.headers)

        longest = max(tokens.quick_text(req.query) + tokens.quick_text(d) for d in req.documents)
        return await self._retrieve(caller, req.model, estimate_rerank_tokens(req), longest, route, call)

    async def _retrieve(
        self,
        caller: Caller,
        model: str,
        estimate: int,
        longest: int,
        route: Route,
        call: Callable[[Adapter, EndpointConfig], Awaitable[A]],
    ) -> Retrieved[A]:
        """The attempt loop of a call that produces no tokens: routed by the chat rules on a
        request without tools or stream, each endpoint's context checked against the longest
        input (every input is embedded on its own), reserved and billed at `pricing.input` per
        token (plus `pricing.request` per call), recorded as a generation like chat."""
        stand_in = ChatRequest(model=model, messages=[])
        gen_id = self.ledger.ids.generation_id(time.time())
        GENERATION_ID.set(gen_id)
        meter = Metering(gen_id, caller, stand_in, estimate, None, time.monotonic(), output_bound=0)
        cands = plan(route.models, stand_in, route.prefs, longest, self.health)
        if not any(c.endpoint.provider in self.adapters for c in cands):
            raise NoEndpointAvailable("no provider is configured for this model")
        await self._reserve(meter, cands)
        try:
            for cand in self._attempts(meter, cands):
                t0 = time.monotonic()
                ep = cand.endpoint
                try:
                    resp = await call(self.adapters[ep.provider], ep)
                except UpstreamError as e:
                    self._failed(meter, cand, e)
                    continue
                meter.candidate = cand
                meter.first_token_at = time.monotonic()
                self.health.success(cand.key, meter.first_token_at - t0, None)
                cost = pricing.quantize(pricing.cost(resp.usage, ep.pricing))
                return Retrieved(resp, cand, cost, meter)
            raise self._exhausted(meter)
        except BaseException:
            await self._release(meter)
            raise

    async def settle_retrieved(self, done: Retrieved[Any]) -> None:
        """Record an embeddings or rerank generation and settle its hold (as `settle`)."""
        await self.record(done.meter, done.response.usage, done.cost, "ok", None, streamed=False)

    # ---- streams -------------------------------------------------------------------------
    async def open_stream(self, caller: Caller, req: ChatRequest, route: Route) -> LiveStream:
        """Try endpoints until one produces its first event; failures up to then fall back."""
        meter = self._begin(caller, req)
        cands = self._candidates(meter, route)
        await self._reserve(meter, cands)
        try:
            for cand in self._attempts(meter, cands):
                ep = cand.endpoint
                it = self.adapters[ep.provider].stream(self._fit(meter, cand), ep, caller.headers)
                span = self._attempt_span(meter, cand)
                try:
                    first = await anext(it)
                except StopAsyncIteration:
                    if span is not None:
                        self._end_span(span, UpstreamError("empty stream"))
                    self._failed(meter, cand, UpstreamError("provider sent an empty stream"))
                    await it.aclose()
                    continue
                except UpstreamError as e:
                    if span is not None:
                        self._end_span(span, e)
                    await it.aclose()
                    self._failed(meter, cand, e)
                    continue
                except BaseException as e:
                    if span is not None:
                        self._end_span(span, e)
                    await it.aclose()
                    raise
                if span is not None:
                    self._end_span(span, None)
                meter.candidate = cand
                return LiveStream(self, meter, cand, first, it)
            raise self._exhausted(meter)
        except BaseException:
            await self._release(meter)
            raise

    # ---- shared --------------------------------------------------------------------------
    def _attempt_span(self, meter: Metering, cand: Candidate) -> Any:
        """The upstream attempt's span, or None when tracing is off (the common case: one test)."""
        if self.tracing is None:
            return None
        ep = cand.endpoint
        base_url = getattr(self.config.providers.get(ep.provider), "base_url", "")
        return self.tracing.start_attempt(ep.provider, ep.model, base_url, meter.request.max_tokens)

    def _end_span(self, span: Any, error: BaseException | None, response_model: str | None = None,
                  input_tokens: int = 0, output_tokens: int = 0) -> None:  # fmt: skip
        assert self.tracing is not None
        kind = None if error is None else type(error).__name__  # an error's kind, never its text
        self.tracing.end_attempt(span, kind, response_model, input_tokens, output_tokens)

    def _fit(self, meter: Metering, cand: Candidate) -> ChatRequest:
        """The request as `cand` gets it. A max_tokens lowered to fit the context is not told to
        the caller (it asked for a ceiling, not a length) but is recorded on the generation, in the
        serving attempt's entry of `provider_responses`."""
        req = meter.request
        sent = fit(req, cand.endpoint, self.issuers, meter.prompt_estimate)
        meter.budget_cut = sent.max_tokens if sent.max_tokens != req.max_tokens else None
        return sent

    def _attempts(self, meter: Metering, cands: list[Candidate]) -> Iterator[Candidate]:
        """Endpoints to try in turn, bounded in count and in total time."""
        deadline = meter.started + MAX_RETRY_SECONDS
        usable = [c for c in cands if c.endpoint.provider in self.adapters]
        for i, c in enumerate(usable[:MAX_ATTEMPTS]):
            if i and time.monotonic() > deadline:
                return
            yield c

    def _failed(self, meter: Metering, cand: Candidate, e: UpstreamError) -> None:
        # The upstream's own HTTP status when it answered (OpenRouter's provider_responses), else ours.
        status = (e.metadata or {}).get("provider_code", e.status)
        meter.attempts.append(
            {"provider": cand.endpoint.provider, "model": cand.model.id, "status": status, "error": e.message}
        )
        meter.last_error = e
        self.health.failure(cand.key, rate_limited=e.status == 429)
        if not e.retryable:
            raise e

    def _exhausted(self, meter: Metering) -> GatewayError:
        """The most meaningful error once every endpoint failed, listing each failure."""
        attempts = meter.attempts
        meta: dict[str, object] = {"attempts": attempts}
        if not attempts:
            return NoEndpointAvailable("no endpoint could be tried", metadata=meta)
        last = meter.last_error
        if len(attempts) == 1 and last is not None:
            return last
        if all(a["status"] == 429 for a in attempts):
            retry = last.retry_after if last else None
            return UpstreamError("every provider is rate-limited", status=429, retry_after=retry, metadata=meta)
        summary = "; ".join(f"{a['provider']}: {a['error']}" for a in attempts)
        if all(a["status"] == 504 for a in attempts):
            return UpstreamTimeout(f"every provider timed out ({summary})", metadata=meta)
        return UpstreamError(f"every provider failed ({summary})", metadata=meta)

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

    async def record(
        self,
        meter: Metering,
        usage: Usage,
        cost: Decimal,
        status: GenerationStatus,
        finish: str | None,
        *,
        streamed: bool,
        error: str | None = None,
    ) -> None:
        cand = meter.candidate
        assert cand is not None, "only a generation that an endpoint served is recorded"
        attempts = meter.attempts
        if meter.budget_cut is not None:
            served: dict[str, Any] = {"provider": cand.endpoint.provider, "model": cand.model.id, "status": 200}
            served["max_tokens_requested"] = meter.request.max_tokens
            served["max_tokens_sent"] = meter.budget_cut
            attempts = [*attempts, served]
        now = time.monotonic()
        latency = now - meter.started
        ttft = (meter.first_token_at or now) - meter.started
        gen_time = now - (meter.first_token_at or meter.started)
        gen = GenerationRecord(
            id=meter.gen_id,
            key_hash=meter.caller.key.hash,
            model=cand.model.id,
            provider=cand.endpoint.provider,
            upstream_model=cand.endpoint.model,
            api=meter.caller.api,
            streamed=streamed,
            status=status,
            finish_reason=finish,
            tokens_prompt=usage.input_tokens,
            tokens_completion=usage.output_tokens,
            tokens_cached=usage.cache_read_tokens,
            tokens_cache_write=usage.cache_write_tokens,
            tokens_reasoning=usage.reasoning_tokens,
            cost=cost,
            latency_ms=int(latency * 1000),
            ttft_ms=int(ttft * 1000),
            throughput=(usage.output_tokens / gen_time) if gen_time > 0 and usage.output_tokens else None,
            app=meter.caller.app,
            app_title=meter.caller.app_title,
            attempts=attempts,
            error=error,
            created_at=time.time(),
        )
        if self.metrics is not None:
            self.metrics.settled(gen.model, gen.provider, gen.api, status, latency, ttft, gen.tokens_prompt,
                                 gen.tokens_completion, gen.tokens_cached, gen.tokens_reasoning, cost)  # fmt: skip
        hold, meter.hold = meter.hold, None
        assert hold is not None, "settled twice"
        ticket, meter.ticket = meter.ticket, None
        try:
            if ticket is not None:
                await self.limiter.settle(ticket, usage.input_tokens + usage.output_tokens)
        finally:
            await self._settle(hold, gen)

    async def _settle(self, hold: Hold, gen: GenerationRecord) -> None:
        """Settle, or hand the settle to the queue when the database refuses it (settle is
        idempotent on the generation id, so a retry after a commit whose answer was lost bills
        nothing twice)."""
        try:
            await self.ledger.settle(hold, gen)
        except ValueError:
            raise  # a bug (hold of another key), not the database
        except Exception as e:
            log.warning("settling %s failed (%s): queued until the database takes it", gen.id, e)
            await self.settle_queue.put(hold, gen)

    def settle_later(self, coro: Any) -> asyncio.Task[None]:
        """Run a settle that must survive the caller's cancellation; drained at shutdown. The
        task is returned so a caller may wait for it (never cancel it)."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return task

    @property
    def settling(self) -> int:
        """Settles not yet committed (the answer may already be out), queued ones included."""
        return len(self._settling) + self.settle_queue.pending

    async def drain(self, seconds: float = 60.0) -> bool:
        """Wait for every settle to commit or be queued, then for the queue to empty, for up to
        `seconds` in all. True if all committed. The app closes the queue afterwards: what is left
        then stays in its spool file for the next start (billing.settle_queue)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self._settling:
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.wait(list(self._settling), timeout=left)
        if self._settling:
            log.error("shutdown: %d settles still running after %.0fs", len(self._settling), seconds)
        emptied = await self.settle_queue.wait_empty(max(deadline - loop.time(), 0.0))
        return emptied and not self._settling


_MODALITY_USE = {
    "text->text": "a chat model: call POST /v1/chat/completions",
    "text->embedding": "an embedding model: call POST /v1/embeddings",
    "text->rerank": "a rerank model: call POST /v1/rerank",
}


def _wrong_modality(model: str, has: str, wanted: str) -> str:
    return f"model '{model}' ({has}) is {_MODALITY_USE.get(has, has)}; this endpoint serves {wanted} models"


def _fill_missing_usage(resp: ChatResponse, meter: Metering, exact: Callable[[str], int] | None) -> None:
    """Upstreams that return no usage are metered offline: exactly with the model's tokenizer when
    one is loaded (`exact`), else with the estimate."""
    u = resp.usage
    count = exact or tokens.count_output
    if not u.output_tokens:
        text = []
        for p in resp.content:
            if isinstance(p, ToolCallPart):
                text.append(p.name + p.arguments)
            else:
                text.append(getattr(p, "text", "") or "")
        u.output_tokens = count("".join(text))
    if not u.input_tokens:
        u.input_tokens = tokens.count_request(meter.request, exact) if exact else meter.prompt_estimate


__all__ = ["Caller", "Completion", "Gateway", "Retrieved", "Route"]
