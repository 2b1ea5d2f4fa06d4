"""The one attempt loop, in both answer modes, with fake adapters behind the real gateway: fallback
on a retryable failure, a stop on one no other endpoint could fix, an empty stream counted as a
failure, and one usage rule for upstreams that report none. The ledger is a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio

from keeprouter.billing.ledger import Ledger
from keeprouter.config import EndpointConfig, parse_config
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    ChatRequest,
    ChatResponse,
    Finish,
    Message,
    StreamEvent,
    TextDelta,
    TextPart,
    Usage,
    UsageUpdate,
)
from keeprouter.gateway import Caller, Completion, Gateway, LiveStream, Metering
from keeprouter.gateway.metering import filled_usage
from keeprouter.keys import KeyService
from keeprouter.providers.base import Adapter, CountNotSupported
from keeprouter.routing.health import HealthTracker
from keeprouter.store import Store, open_store
from keeprouter.store.base import ADMIN_HASH


class FakeAdapter:
    """Answers with `text` and `usage`, or fails with `error`; `empty` streams nothing at all."""

    api = "openai"

    def __init__(self, text: str = "hello", usage: Usage | None = None, error: UpstreamError | None = None,
                 empty: bool = False) -> None:  # fmt: skip
        self.text, self.usage, self.error, self.empty = text, usage, error, empty
        self.calls = 0

    async def complete(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> ChatResponse:
        self.calls += 1
        if self.error is not None:
            raise self.error
        usage = msgspec.structs.replace(self.usage or Usage())  # a copy: the gateway may fill it in
        return ChatResponse(id="r", model=ep.model, content=[TextPart(text=self.text)], stop_reason="end_turn",
                            usage=usage)  # fmt: skip

    async def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.empty:
            return
        yield TextDelta(text=self.text)
        if self.usage is not None:
            yield UsageUpdate(usage=self.usage)
        yield Finish(stop_reason="end_turn")

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        raise CountNotSupported("no count endpoint")

    async def close(self) -> None:
        pass


@pytest_asyncio.fixture(name="store")
async def store_fixture(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite:///{tmp_path / 'kr.db'}")
    await KeyService(store).ensure_admin()
    yield store
    await store.close()


def gateway(store: Store, a: FakeAdapter, b: FakeAdapter) -> Gateway:
    def ep(p: str) -> dict[str, Any]:
        # "up-*" has no shipped tokenizer: a usage-less answer is estimated, no tokenizer load starts
        return {"provider": p, "model": f"up-{p}", "pricing": {"input": 1, "output": 1}}

    raw = {
        "providers": {p: {"api": "openai", "base_url": "http://127.0.0.1:9", "api_key": "k"} for p in ("a", "b")},
        "models": {"m": {"context_length": 100000, "endpoints": [ep("a"), ep("b")]}},
    }
    adapters: dict[str, Adapter] = {"a": a, "b": b}
    return Gateway(parse_config(raw, env={}), adapters, Ledger(store), HealthTracker())


async def ask(gw: Gateway, store: Store, *, stream: bool) -> Completion | LiveStream:
    key = await store.get_key(ADMIN_HASH, 0.0)
    assert key is not None
    req = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="hi there")])], stream=stream)
    route = gw.route({"model": "m", "provider": {"order": ["a", "b"]}}, req)
    caller = Caller("openai", key, {})
    return await (gw.open_stream(caller, req, route) if stream else gw.complete(caller, req, route))


async def finish(gw: Gateway, got: Completion | LiveStream) -> Metering:
    if isinstance(got, Completion):
        await gw.settle(got)
        return got.meter
    async for _ in got.events():
        pass
    await got.finish("ok")
    return got.meter


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_retryable_failure_falls_back_and_is_recorded(store: Store, stream: bool) -> None:
    a = FakeAdapter(error=UpstreamError("busy", status=503))
    b = FakeAdapter(usage=Usage(input_tokens=7, output_tokens=3))
    gw = gateway(store, a, b)
    meter = await finish(gw, await ask(gw, store, stream=stream))
    assert (a.calls, b.calls) == (1, 1)
    assert meter.candidate is not None and meter.candidate.endpoint.provider == "b"
    assert [(x.candidate.endpoint.provider, x.status) for x in meter.failed] == [("a", 503)]
    gen = await store.get_generation(meter.gen_id)
    assert gen is not None and gen.provider == "b" and gen.streamed is stream
    assert gen.attempts == [{"provider": "a", "model": "m", "status": 503, "error": "busy"}]
    assert meter.hold is None and gw.settling == 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_failure_no_endpoint_could_fix_stops_the_loop(store: Store, stream: bool) -> None:
    a = FakeAdapter(error=UpstreamError("bad request", status=400))
    b = FakeAdapter()
    gw = gateway(store, a, b)
    with pytest.raises(UpstreamError, match="bad request"):
        await ask(gw, store, stream=stream)
    assert (a.calls, b.calls) == (1, 0)
    key = await store.get_key(ADMIN_HASH, 0.0)
    assert key is not None and key.reserved == 0  # the hold was released


async def test_an_empty_stream_is_a_failed_attempt(store: Store) -> None:
    gw = gateway(store, FakeAdapter(empty=True), FakeAdapter())
    meter = await finish(gw, await ask(gw, store, stream=True))
    assert meter.candidate is not None and meter.candidate.endpoint.provider == "b"
    assert [x.error.message for x in meter.failed if x.error] == ["provider sent an empty stream"]


async def test_every_endpoint_failing_lists_each_failure(store: Store) -> None:
    gw = gateway(store, FakeAdapter(error=UpstreamError("x", status=502)), FakeAdapter(error=UpstreamError("y")))
    with pytest.raises(UpstreamError) as e:
        await ask(gw, store, stream=False)
    assert e.value.message == "every provider failed (a: x; b: y)"
    assert [r["provider"] for r in e.value.metadata["attempts"]] == ["a", "b"]  # type: ignore[index,union-attr]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_usage_less_upstream_is_metered_alike_streamed_or_not(store: Store, stream: bool) -> None:
    gw = gateway(store, FakeAdapter(text="four words of text"), FakeAdapter())
    meter = await finish(gw, await ask(gw, store, stream=stream))
    gen = await store.get_generation(meter.gen_id)
    assert gen is not None
    expected = filled_usage(None, "four words of text", meter, None)
    assert (gen.tokens_prompt, gen.tokens_completion) == (expected.input_tokens, expected.output_tokens)
    assert gen.tokens_prompt == meter.prompt_estimate and gen.tokens_completion > 0


def test_filled_usage_keeps_what_the_upstream_reported() -> None:
    req = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="hi")])])
    meter = Metering("g", Caller("openai", None, {}), req, 11, None, 0.0)  # type: ignore[arg-type]
    reported = Usage(input_tokens=5, output_tokens=0, cache_read_tokens=2, reasoning_tokens=1)
    u = filled_usage(reported, "some output", meter, None)
    assert (u.input_tokens, u.cache_read_tokens, u.reasoning_tokens) == (5, 2, 1) and u.output_tokens > 0
    assert filled_usage(reported, "", meter, None) is reported  # nothing produced, nothing to add
    assert filled_usage(None, "", meter, None) == Usage(input_tokens=11)
    assert filled_usage(None, "abc", meter, lambda s: 100).input_tokens > 100  # the exact counter, per text
