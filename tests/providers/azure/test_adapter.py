"""The `azure` adapter: where each request goes (every form of base URL an operator pastes, with and
without `api_version`), what it sends (Azure's `api-key`, the provider's own headers, the body as
Azure accepts it), and what it answers (Azure's filter chunks skipped, content-filter finishes, errors
with Azure's message and never our key)."""

from __future__ import annotations

import datetime as dt
from contextlib import aclosing
from decimal import Decimal
from typing import Any

import pytest
from upstreams.azure_server import AzureUpstream
from upstreams.script import Fault, Reply, ToolCall

from keeprouter.clients.openai_chat.request import parse_request
from keeprouter.config import EndpointConfig, Pricing, ProviderConfig, Timeouts, parse_config
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import ChatRequest, Finish, StreamEvent, TextDelta, ToolCallStart, UsageUpdate
from keeprouter.providers import build_adapter
from keeprouter.providers.azure import AzureAdapter
from keeprouter.providers.azure.urls import AzureUrls

HOST = "https://my-res.openai.azure.com"
BASES = [HOST, HOST + "/", HOST + "/openai", HOST + "/openai/", HOST + "/openai/v1", HOST + "/openai/v1/",
         HOST + "/OpenAI/V1"]  # fmt: skip
KEY = AzureUpstream.DEFAULT_KEY


@pytest.mark.parametrize("base", BASES)
def test_deployments_url_from_every_base_form(base: str) -> None:
    urls = AzureUrls.parse(base, "2024-10-21")
    assert urls.chat("gpt4o-prod") == f"{HOST}/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    assert urls.embeddings("emb") == f"{HOST}/openai/deployments/emb/embeddings?api-version=2024-10-21"


@pytest.mark.parametrize("base", BASES)
def test_v1_url_from_every_base_form(base: str) -> None:
    urls = AzureUrls.parse(base, None)
    assert urls.chat("gpt4o-prod") == f"{HOST}/openai/v1/chat/completions"
    assert urls.embeddings("emb") == f"{HOST}/openai/v1/embeddings"


@pytest.mark.parametrize(
    ("version", "url"),
    [
        ("v1", f"{HOST}/openai/v1/chat/completions"),  # never a deployments URL that can only 404
        ("preview", f"{HOST}/openai/v1/chat/completions?api-version=preview"),
        ("latest", f"{HOST}/openai/v1/chat/completions?api-version=latest"),
        ("2025-04-01-preview", f"{HOST}/openai/deployments/d/chat/completions?api-version=2025-04-01-preview"),
    ],
)
def test_api_version_names_the_api(version: str, url: str) -> None:
    assert AzureUrls.parse(HOST + "/openai/v1", version).chat("d") == url


def test_query_and_proxy_prefix_of_the_base_are_kept() -> None:
    urls = AzureUrls.parse("https://gw.example.com/azure/openai?api-version=2023-05-15&sub=a b", "2024-10-21")
    assert urls.chat("my dep/x") == (
        "https://gw.example.com/azure/openai/deployments/my%20dep%2Fx/chat/completions?sub=a+b&api-version=2024-10-21"
    )  # the base's own api-version gives way to the configured one; the deployment is one path segment
    assert (
        AzureUrls.parse("http://127.0.0.1:9/openai/v1/?x=1", None).chat("d")
        == "http://127.0.0.1:9/openai/v1/chat/completions?x=1"
    )


def test_max_tokens_field_follows_the_api() -> None:
    assert AzureUrls.parse(HOST, None).takes_max_completion_tokens
    assert AzureUrls.parse(HOST, "2024-10-21").takes_max_completion_tokens
    assert AzureUrls.parse(HOST, "2024-09-01-preview").takes_max_completion_tokens
    assert not AzureUrls.parse(HOST, "2024-06-01").takes_max_completion_tokens


def provider(base: str, *, version: str | None = None, key: str | None = KEY, **raw: Any) -> ProviderConfig:
    row: dict[str, Any] = {"api": "azure", "base_url": base, "api_key": key, **raw}
    if version is not None:
        row["api_version"] = version
    return parse_config({"providers": {"az": row}}, env={}).providers["az"]


def endpoint(model: str = "gpt4o-prod") -> EndpointConfig:
    return EndpointConfig("az", model, Pricing(Decimal(1), Decimal(2)), frozenset({"streaming", "tools"}), 100000,
                          None, Timeouts(connect=2, first_byte=5, idle=5))  # fmt: skip


def request(**kw: Any) -> ChatRequest:
    return parse_request({"model": "m", "messages": [{"role": "user", "content": "Hi"}], **kw})


def test_config_reads_api_version_and_builds_the_azure_adapter() -> None:
    row = {"api": "azure", "base_url": HOST, "api_version": dt.date(2024, 10, 21)}
    p = parse_config({"providers": {"az": row}}, env={}).providers["az"]
    assert p.options == {"api_version": "2024-10-21"}  # YAML reads an unquoted date as a date
    assert isinstance(build_adapter(p), AzureAdapter)
    with pytest.raises(Exception, match=r"providers\.oa\.api_version: unknown key"):
        parse_config({"providers": {"oa": {"api": "openai", "base_url": HOST, "api_version": "x"}}}, env={})


def test_headers_api_key_and_provider_headers() -> None:
    a = AzureAdapter(provider(HOST, headers={"X-Trace": "t1"}))
    inner = a._for(endpoint())
    assert inner.headers["api-key"] == KEY and inner.headers["X-Trace"] == "t1"
    assert "Authorization" not in inner.headers  # the key never travels as a bearer token
    # An Entra token in the provider's headers stands in for the key.
    entra = AzureAdapter(provider(HOST, key=None, headers={"Authorization": "Bearer entra-tok"}))._for(endpoint())
    assert "api-key" not in entra.headers and entra.headers["Authorization"] == "Bearer entra-tok"


def test_one_inner_adapter_per_deployment() -> None:
    a = AzureAdapter(provider(HOST, version="2024-10-21"))
    one, two = a._for(endpoint("d1")), a._for(endpoint("d2"))
    assert one is a._for(endpoint("d1")) and one is not two
    assert one.transport is two.transport is a.transport
    assert two.url == f"{HOST}/openai/deployments/d2/chat/completions?api-version=2024-10-21"


async def collect(a: AzureAdapter, req: ChatRequest, ep: EndpointConfig) -> list[StreamEvent]:
    async with aclosing(a.stream(req, ep, {})) as events:
        return [ev async for ev in events]


@pytest.mark.parametrize("version", [None, "2024-10-21"])
async def test_complete_and_stream_against_the_emulator(azure_upstream: AzureUpstream, version: str | None) -> None:
    a = AzureAdapter(provider(azure_upstream.url + "/openai", version=version))
    try:
        azure_upstream.script(Reply(text="Hello", output_tokens=9), Reply(text=None, tool_calls=[ToolCall("c1", "f")]))
        r = await a.complete(request(max_tokens=50), endpoint(), {})
        assert (r.model, r.content[0].text, r.usage.output_tokens) == ("gpt-4o-2024-11-20", "Hello", 9)  # type: ignore[union-attr]
        events = await collect(a, request(stream=True, stream_options={"include_usage": True}), endpoint())
    finally:
        await a.close()
    assert [e.name for e in events if isinstance(e, ToolCallStart)] == ["f"]
    assert [e.stop_reason for e in events if isinstance(e, Finish)] == ["tool_use"]
    assert any(isinstance(e, UsageUpdate) for e in events)
    rec = azure_upstream.requests[0]
    assert rec.body["model"] == "gpt4o-prod"  # v1 needs it; the deployments API ignores it
    assert rec.body["max_completion_tokens"] == 50 and "max_tokens" not in rec.body
    assert rec.header("api-key") == KEY and rec.header("authorization") is None


async def test_filter_chunks_are_skipped_and_a_filtered_finish_is_content_filter() -> None:
    up = AzureUpstream(async_filter=True)
    async with up:
        up.script(Reply(text="Some text", stop="refusal"), Reply(text=None, stop="refusal"))
        a = AzureAdapter(provider(up.url))
        try:
            events = await collect(a, request(stream=True), endpoint())
            r = await a.complete(request(), endpoint(), {})
        finally:
            await a.close()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Some text"
    assert [e.stop_reason for e in events if isinstance(e, Finish)] == ["content_filter"]
    assert (r.stop_reason, r.content) == ("content_filter", [])


async def test_errors_keep_azures_message_and_never_the_key(azure_upstream: AzureUpstream) -> None:
    echo = {"error": {"code": "401", "message": f"Key {KEY} is not valid for this resource"}}
    azure_upstream.script(Fault(status=401, body=echo), azure_upstream.prompt_filtered(),
                          Fault(status=429, headers={"retry-after": "7"}),
                          Fault(stream_error_after=2, body={"code": 500, "message": f"boom {KEY}"}))  # fmt: skip
    a = AzureAdapter(provider(azure_upstream.url, version="2024-10-21"))
    try:
        with pytest.raises(UpstreamError) as auth:
            await a.complete(request(), endpoint(), {})
        with pytest.raises(UpstreamError) as filtered:
            await a.complete(request(), endpoint(), {})
        with pytest.raises(UpstreamError) as limited:
            await a.complete(request(), endpoint(), {})
        with pytest.raises(UpstreamError) as mid:
            await collect(a, request(stream=True), endpoint())
        with pytest.raises(UpstreamError) as missing:  # an unknown deployment
            await a.complete(request(), endpoint("nope"), {})
    finally:
        await a.close()
    for e in (auth, filtered, limited, mid, missing):
        assert KEY not in str(e.value) and KEY not in e.value.message
    assert "provider az rejected" in auth.value.message and auth.value.status != 401
    assert filtered.value.status == 400 and "content management policy" in filtered.value.message
    assert limited.value.status == 429 and limited.value.retry_after == "7"
    assert "does not exist" in missing.value.message
