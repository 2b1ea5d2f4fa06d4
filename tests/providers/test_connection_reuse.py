"""A stream's upstream connection goes back to the pool although its consumer stops at `[DONE]`,
before the body's own end: the next request reuses it instead of opening one (on a real upstream,
a TLS handshake before its first token)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web
from support.gateway import run_gateway, sqlite_url, two_format_config

HEAD = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"up-gpt","choices":[{"index":0,'
CHUNK = HEAD + b'"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
LAST = HEAD + b'"delta":{},"finish_reason":"stop"}]}\n\n'


async def test_sequential_streams_share_one_upstream_connection(tmp_path: Path) -> None:
    connections: set[int] = set()

    async def chat(request: web.Request) -> web.StreamResponse:
        connections.add(id(request.transport))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(CHUNK + LAST + b"data: [DONE]\n\n")
        await asyncio.sleep(0.02)  # the body's end comes in a read of its own, after [DONE]
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/v1"
    try:
        async with run_gateway(two_format_config(url, url, sqlite_url(tmp_path))) as gw:
            body = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {gw.admin_key}"}) as s:
                for _ in range(4):
                    async with s.post(gw.url + "/v1/chat/completions", json=body) as r:
                        assert r.status == 200
                        assert (await r.read()).endswith(b"data: [DONE]\n\n")
                    await asyncio.sleep(0.05)  # the first body's end has arrived and been read
            assert len(connections) == 1, f"{len(connections)} upstream connections for 4 sequential streams"
    finally:
        await runner.cleanup()
