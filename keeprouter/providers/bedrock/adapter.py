"""Adapter for AWS Bedrock Runtime: Converse and ConverseStream, for every model Bedrock serves.

`POST {base_url}/model/{model id}/converse` (JSON answer) and `/converse-stream` (an
`application/vnd.amazon.eventstream` body, framed by `EventStreamDecoder`, this kind's registry
framing), every request signed (`auth.py`). The model id is percent-encoded into one path segment
(`:` -> `%3A`, an ARN's `/` too); the transport sends the URL exactly as signed. Error answers are
read by their `x-amzn-errortype` (`_http_error`, the transport's `errors` hook), by status when
Bedrock did not write them (a proxy, a load balancer).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from urllib.parse import quote

import orjson

from keeprouter.config import EndpointConfig, ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent
from keeprouter.formats.embeddings import EmbeddingRequest, EmbeddingResponse
from keeprouter.providers import retrieval
from keeprouter.providers.anthropic.request import json_tool
from keeprouter.providers.base import CountNotSupported
from keeprouter.providers.transport import Transport

from . import embeddings as emb
from .auth import BearerAuth, NoCredentials, RequestSigner, SigV4Signer
from .eventstream import EventStreamDecoder
from .request import build_request, is_claude
from .response import error_for, error_message, error_type, parse_response
from .stream import BedrockStreamDecoder

DEFAULT_MAX_TOKENS = 8192  # Claude requires a maximum (other models have their own default)
COUNT_TIMEOUT = 10.0  # seconds: a count that slow is better estimated locally
_COUNTED = ("messages", "system", "toolConfig", "additionalModelRequestFields")  # what CountTokens takes


# a cross-region inference profile: a geography before the model id (`us.`, `eu.`, `apac.`, `global.`)
_PROFILE_PREFIX = re.compile(r"[a-z]{2,6}(?:-gov)?\.(?=[a-z0-9-]+\.)")


def counted_model(model: str) -> str | None:
    """The model id CountTokens takes for `model` (an id or ARN of a foundation model), or None."""
    if model.startswith("arn:"):
        return model if ":foundation-model/" in model else None
    m = _PROFILE_PREFIX.match(model)
    return model[m.end() :] if m else model


class BedrockAdapter:
    api = "bedrock"

    def __init__(self, provider: ProviderConfig, transport: Transport | None = None) -> None:
        self.provider = provider
        self.transport = transport or Transport(provider, framing=EventStreamDecoder)
        self.transport.errors = self._http_error
        region = provider.options.get("region", "us-east-1")
        self.base_url = provider.base_url or f"https://bedrock-runtime.{region}.amazonaws.com"
        self.headers = {"Content-Type": "application/json", **provider.headers}
        self.signer: RequestSigner = (
            BearerAuth(provider.api_key)
            if provider.api_key
            else SigV4Signer(
                region,
                access_key=provider.options.get("aws_access_key_id"),
                secret_key=provider.options.get("aws_secret_access_key"),
                session_token=provider.options.get("aws_session_token"),
            )
        )

    def url(self, model: str, action: str) -> str:
        return f"{self.base_url}/model/{quote(model, safe='')}/{action}"

    async def _signed(self, url: str, body: bytes, accept: str) -> dict[str, str]:
        headers = {**self.headers, "Accept": accept}
        try:
            if self.signer.needs_io:  # the credential chain may read files or call a metadata service
                return await asyncio.to_thread(self.signer.sign, "POST", url, headers, body)
            return self.signer.sign("POST", url, headers, body)
        except NoCredentials as e:
            raise UpstreamError(f"provider {self.provider.id}: {e}") from None

    @staticmethod
    def _json_tool(req: ChatRequest) -> str | None:
        tool = json_tool(req)
        return tool[0] if tool else None

    def _body(self, req: ChatRequest, ep: EndpointConfig) -> bytes:
        default_max = ep.max_output_tokens or (DEFAULT_MAX_TOKENS if is_claude(ep.model) else None)
        auto = ep.auto_breakpoint
        return orjson.dumps(build_request(req, ep.model, default_max_tokens=default_max, auto_breakpoint=auto))

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        """Bedrock's own count (`CountTokens` over the Converse input; Claude models only, others
        raise CountNotSupported without a request). CountTokens takes a foundation model, not an
        inference profile: a cross-region profile id is counted as its model (`us.anthropic.…` ->
        `anthropic.…`), a profile ARN (whose model it does not name) is not counted."""
        if not is_claude(ep.model):
            raise CountNotSupported(f"provider {self.provider.id} counts tokens for Claude models only")
        model = counted_model(ep.model)
        if model is None:
            raise CountNotSupported(f"provider {self.provider.id} counts tokens for foundation models, not {ep.model}")
        converse = build_request(req, ep.model, default_max_tokens=1)
        url = self.url(model, "count-tokens")
        body = orjson.dumps({"input": {"converse": {k: converse[k] for k in _COUNTED if k in converse}}})
        headers = await self._signed(url, body, "application/json")
        timeouts = Timeouts(connect=ep.timeout.connect, first_byte=COUNT_TIMEOUT, idle=COUNT_TIMEOUT)
        data = await self.transport.post_json(url, body, headers, timeouts)
        n = data.get("inputTokens")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise UpstreamError(f"provider {self.provider.id} returned no token count")
        return n

    async def complete(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> ChatResponse:
        url, body = self.url(ep.model, "converse"), self._body(req, ep)
        headers = await self._signed(url, body, "application/json")
        data = await self.transport.post_json(url, body, headers, ep.timeout)
        return parse_response(data, model=ep.model, id=f"msg_{uuid.uuid4().hex}", json_tool=self._json_tool(req))

    async def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        url, body = self.url(ep.model, "converse-stream"), self._body(req, ep)
        headers = await self._signed(url, body, "application/vnd.amazon.eventstream")
        decoder = BedrockStreamDecoder(
            id=f"msg_{uuid.uuid4().hex}", model=ep.model, provider=self.provider.id, json_tool=self._json_tool(req)
        )
        # closed on every path (the caller's aclose() included): that closes the upstream connection
        async with aclosing(self.transport.post_stream_reads(url, body, headers, ep.timeout)) as reads:
            async for frames in reads:  # one async step per upstream read
                for event_type, payload in frames:
                    try:
                        events = decoder.feed(event_type or "", payload)
                    except UpstreamError as e:  # an in-band exception: it may echo our key back
                        raise self.transport.scrub(e) from None
                    for ev in events:
                        yield ev
                    if decoder.done:
                        return
        if not decoder.stopped:
            raise UpstreamError(f"provider {self.provider.id} ended the stream early")

    async def embed(
        self, req: EmbeddingRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> EmbeddingResponse:
        """InvokeModel in the model family's body (`embeddings.py`): Titan one text a call, Cohere
        96, every call signed; fanned out concurrently and reassembled in input order."""
        fam = emb.family(ep.model)
        if fam is None:
            raise UpstreamError(f"provider {self.provider.id}: no embeddings body known for {ep.model}")
        texts = retrieval.text_inputs(req, self.provider.id, self.api)
        url = self.url(ep.model, "invoke")

        async def batch(chunk: list[str]) -> EmbeddingResponse:
            wire = emb.titan_body(chunk[0], req, ep.model) if fam == "titan" else emb.cohere_body(chunk, req, ep.model)
            body = orjson.dumps(wire)
            headers = await self._signed(url, body, "application/json")
            data, answer_headers = await self.transport.post_json_headers(url, body, headers, ep.timeout)
            if fam == "titan":
                if not isinstance(data, dict):
                    raise UpstreamError(f"provider {self.provider.id} returned invalid JSON")
                return emb.parse_titan(data, chunk[0])
            return emb.parse_cohere(data, answer_headers, chunk)

        return await retrieval.in_batches(texts, emb.batch_size(fam), batch)

    def _http_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError | None:
        """Bedrock's error by the type in `x-amzn-errortype`; None without that header (not Bedrock
        answering: the transport maps it by status)."""
        kind = error_type(headers.get("x-amzn-errortype"))
        if not kind:
            return None
        message = error_message(raw) or f"HTTP {status}"
        return error_for(kind, message, self.provider.id, status=status, retry_after=headers.get("retry-after"))

    async def close(self) -> None:
        await self.transport.close()
