"""The Bedrock adapter against the emulator, without the gateway: stream endings, corruption,
timeouts and the caller going away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from decimal import Decimal

import pytest
import pytest_asyncio
from upstreams import Fault, Reply
from upstreams.bedrock_server import ACCESS_KEY, REGION, SECRET_KEY, BedrockUpstream

from keeprouter.config import EndpointConfig, Pricing, ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError, UpstreamTimeout
from keeprouter.formats.canonical import ChatRequest, Finish, Message, StreamEvent, TextDelta, TextPart
from keeprouter.providers.base import CountNotSupported
from keeprouter.providers.bedrock import BedrockAdapter

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
REQ = ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="Hi")])], stream=True)
TIMEOUTS = Timeouts(connect=2, first_byte=0.5, idle=0.5)
EP = EndpointConfig(
    provider="bd",
    model=MODEL,
    pricing=Pricing(input=Decimal(1), output=Decimal(1)),
    capabilities=frozenset({"streaming"}),
    context_length=1000,
    max_output_tokens=None,
    timeout=TIMEOUTS,
)


@pytest_asyncio.fixture
async def adapter(bedrock_upstream: BedrockUpstream) -> AsyncIterator[BedrockAdapter]:
    options = {"region": REGION, "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
    a = BedrockAdapter(ProviderConfig("bd", "bedrock", bedrock_upstream.url, None, TIMEOUTS, options=options))
    yield a
    await a.close()


async def events(adapter: BedrockAdapter) -> list[StreamEvent]:
    async with aclosing(adapter.stream(REQ, EP, {})) as s:
        return [ev async for ev in s]


async def test_whole_stream(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Reply(text="Hello world", chunk_size=2))
    out = await events(adapter)
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == "Hello world"
    assert isinstance(out[-2], Finish)


async def test_cut_stream_is_an_error(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Fault(cut_after_chunks=3, cut_clean=True, reply=Reply(text="Hello world")))
    with pytest.raises(UpstreamError, match="ended the stream early"):
        await events(adapter)


async def test_bad_crc_is_an_invalid_stream(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Fault(malformed="json", malformed_after=2))
    with pytest.raises(UpstreamError, match="invalid stream: event stream: message CRC mismatch"):
        await events(adapter)


async def test_in_band_exception_is_scrubbed(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(
        Fault(stream_error_after=1, body={"type": "throttlingException", "message": f"slow down {SECRET_KEY}"})
    )
    with pytest.raises(UpstreamError) as e:
        await events(adapter)
    assert e.value.status == 429 and SECRET_KEY not in e.value.message and "[REDACTED]" in e.value.message


async def test_first_byte_timeout(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Fault(hang=True))
    with pytest.raises(UpstreamTimeout):
        await events(adapter)


async def test_http_error_before_the_stream(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Fault(status=400, body={"message": "messages.0: bad"}))
    with pytest.raises(UpstreamError, match=r"messages\.0: bad") as e:
        await events(adapter)
    assert e.value.status == 400


@pytest.mark.parametrize("stream", [False, True])
async def test_errors_mapped_by_their_bedrock_type(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream, stream: bool
) -> None:
    bedrock_upstream.script(
        Fault(status=400, body={"message": "quota"}, headers={"x-amzn-ErrorType": "ServiceQuotaExceededException:"}),
        Fault(status=429, headers={"retry-after": "7"}),
        Fault(status=502, body="<html>bad gateway</html>", headers={"x-amzn-ErrorType": ""}),  # not Bedrock
        Fault(status=424, body={"message": f"model failed near {SECRET_KEY}"}),
    )

    async def call() -> object:
        return await (events(adapter) if stream else adapter.complete(REQ, EP, {}))

    with pytest.raises(UpstreamError) as e:
        await call()
    assert (e.value.status, e.value.message) == (429, "quota")
    with pytest.raises(UpstreamError) as e:
        await call()
    assert e.value.status == 429 and e.value.retry_after == "7"
    with pytest.raises(UpstreamError) as e:
        await call()
    assert e.value.status == 502 and "HTTP 502" in e.value.message
    with pytest.raises(UpstreamError) as e:
        await call()
    assert e.value.status == 502 and "ModelErrorException" in e.value.message
    assert SECRET_KEY not in e.value.message


async def test_closing_the_stream_closes_the_upstream(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream
) -> None:
    bedrock_upstream.script(Fault(drip_interval=0.05, reply=Reply(text="a long answer, dripped slowly", chunk_size=1)))
    async with aclosing(adapter.stream(REQ, EP, {})) as s:
        async for ev in s:
            if isinstance(ev, TextDelta):
                break
    [rec] = bedrock_upstream.requests
    await rec.wait_done(5)
    assert rec.disconnected and not rec.completed


async def test_count_tokens_only_for_claude(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    nova = EndpointConfig(
        provider="bd",
        model="amazon.nova-pro-v1:0",
        pricing=EP.pricing,
        capabilities=frozenset(),
        context_length=1000,
        max_output_tokens=None,
        timeout=TIMEOUTS,
    )
    with pytest.raises(CountNotSupported, match="Claude models only"):
        await adapter.count_tokens(REQ, nova, {})
    assert not bedrock_upstream.requests
    assert await adapter.count_tokens(REQ, EP, {}) > 0


async def test_complete(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Reply(text="whole", input_tokens=3, output_tokens=2))
    r = await adapter.complete(REQ, EP, {})
    assert r.content == [TextPart(text="whole")] and r.model == MODEL and r.id.startswith("msg_")
    assert (r.usage.input_tokens, r.usage.output_tokens) == (3, 2)
