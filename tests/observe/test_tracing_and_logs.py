"""OpenTelemetry spans (in-memory exporter): one SERVER span per request and one CLIENT span per
upstream attempt, with gen_ai.* attributes, a failed attempt marked; JSON log lines carry the
generation id and never a key or a prompt."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import aiohttp
import orjson
from aiohttp.test_utils import TestServer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from support.gateway import ADMIN_KEY, sqlite_url, two_format_config
from support.raw import auth, chat_body, path
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.app import create_app
from keeprouter.config import parse_config
from keeprouter.observe import tracing
from keeprouter.observe.logs import JsonFormatter

PROMPT = "the secret prompt text"


async def test_one_span_per_request_and_per_attempt_with_gen_ai_attributes(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    exporter = InMemorySpanExporter()
    cfg = parse_config(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path)), env={})
    # both-test is served by oa, then an: the first attempt fails and falls back
    openai_upstream.script(Fault(status=500))
    anthropic_upstream.default = Reply(text="hello", input_tokens=9, output_tokens=3)
    server = TestServer(create_app(cfg, ADMIN_KEY, tracing.Tracing(SimpleSpanProcessor(exporter))), port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as s:
            body = {**chat_body("openai", "both-test", stream=False, max_tokens=16, text=PROMPT),
                    "provider": {"order": ["oa", "an"]}}  # fmt: skip
            async with s.post(f"http://127.0.0.1:{server.port}" + path("openai"), json=body,
                              headers=auth("openai", ADMIN_KEY)) as r:  # fmt: skip
                assert r.status == 200, await r.text()
                gen_id = r.headers["X-Generation-Id"]
    finally:
        await server.close()
    spans = exporter.get_finished_spans()
    servers = [sp for sp in spans if sp.kind == SpanKind.SERVER]
    clients = [sp for sp in spans if sp.kind == SpanKind.CLIENT]
    assert len(servers) == 1 and len(clients) == 2, [sp.name for sp in spans]
    req = servers[0]
    assert req.name == "chat both-test"
    a = req.attributes or {}
    assert (a["gen_ai.operation.name"], a["gen_ai.request.model"]) == ("chat", "both-test")
    assert a["gen_ai.provider.name"] == "an"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (9, 3)
    assert a["keeprouter.generation.id"] == gen_id and a["gen_ai.response.model"] == "up-claude"
    failed, served = clients
    assert all(c.parent is not None and c.parent.span_id == req.context.span_id for c in clients)
    assert failed.status.status_code == StatusCode.ERROR and (failed.attributes or {})["gen_ai.provider.name"] == "oa"
    sa = served.attributes or {}
    assert served.status.status_code != StatusCode.ERROR and sa["gen_ai.provider.name"] == "an"
    assert sa["gen_ai.request.model"] == "up-claude" and sa["gen_ai.usage.output_tokens"] == 3
    everything = str([(sp.name, dict(sp.attributes or {})) for sp in spans])
    assert PROMPT not in everything and ADMIN_KEY not in everything


def test_traces_stay_off_unless_configured() -> None:
    assert tracing.from_env({}) is None
    assert tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})


async def test_json_log_lines_carry_the_generation_id_and_no_key_or_prompt(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.DEBUG)
    # one retried failure, so the request logs a line of its own (the fallback warning)
    openai_upstream.script(Fault(status=500))
    cfg = parse_config(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path)), env={})
    server = TestServer(create_app(cfg, ADMIN_KEY), port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as s:
            body = {**chat_body("openai", "both-test", stream=False, max_tokens=16, text=PROMPT),
                    "provider": {"order": ["oa", "an"]}}  # fmt: skip
            async with s.post(f"http://127.0.0.1:{server.port}" + path("openai"), json=body,
                              headers=auth("openai", ADMIN_KEY)) as r:  # fmt: skip
                assert r.status == 200
                gen_id = r.headers["X-Generation-Id"]
            logging.getLogger("keeprouter.test").info("after the request")
    finally:
        await server.close()
        root.removeHandler(handler)
        root.setLevel(old)
    lines = [orjson.loads(line) for line in buf.getvalue().splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    mine = [line for line in lines if line.get("generation_id") == gen_id]
    assert mine, lines
    assert PROMPT not in buf.getvalue() and ADMIN_KEY not in buf.getvalue()


async def test_an_embeddings_request_is_traced_as_embeddings(tmp_path: Path, openai_upstream: OpenAIUpstream) -> None:
    exporter = InMemorySpanExporter()
    raw = two_format_config(openai_upstream.url, openai_upstream.url, sqlite_url(tmp_path))
    raw["models"]["emb-test"] = {
        "modality": "text->embedding",
        "endpoints": [{"provider": "oa", "model": "up-emb", "pricing": {"input": 0.02}}],
    }
    cfg = parse_config(raw, env={})
    server = TestServer(create_app(cfg, ADMIN_KEY, tracing.Tracing(SimpleSpanProcessor(exporter))), port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as s:
            body = {"model": "emb-test", "input": "a b"}
            url = f"http://127.0.0.1:{server.port}/v1/embeddings"
            async with s.post(url, json=body, headers=auth("openai", ADMIN_KEY)) as r:
                assert r.status == 200, await r.text()
    finally:
        await server.close()
    spans = exporter.get_finished_spans()
    [req] = [sp for sp in spans if sp.kind == SpanKind.SERVER]
    assert req.name == "embeddings emb-test"
    a = req.attributes or {}
    assert a["gen_ai.operation.name"] == "embeddings" and a["gen_ai.usage.input_tokens"] == 2
    assert len([sp for sp in spans if sp.kind == SpanKind.CLIENT]) == 1
