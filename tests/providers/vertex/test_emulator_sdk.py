"""The Vertex emulator is Vertex as Google's and Anthropic's SDKs see it: Anthropic's Vertex client and
google-genai's Vertex client, each with the test service account's google-auth credentials (whose
token_uri is the emulator), must work against it, streamed and not."""

from __future__ import annotations

import anthropic
import google.genai
import pytest
from google.genai import types
from google.oauth2 import service_account
from upstreams.script import Reply
from upstreams.vertex_server import VertexUpstream

from keeprouter.providers.vertex.auth import SCOPE

# google-genai's async client subclasses aiohttp's ClientSession, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


def credentials(up: VertexUpstream) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_file(up.key_file(), scopes=[SCOPE])  # type: ignore[no-untyped-call,no-any-return]


async def test_anthropics_vertex_client(vertex_upstream: VertexUpstream) -> None:
    vertex_upstream.script(Reply(text="Hello from Claude"), Reply(text="Streamed Claude", chunk_size=4))
    client = anthropic.AsyncAnthropicVertex(
        region=vertex_upstream.location, project_id=vertex_upstream.project, credentials=credentials(vertex_upstream),
        base_url=vertex_upstream.url + "/v1", max_retries=0,
    )  # fmt: skip
    async with client:
        msg = await client.messages.create(
            model="claude-sonnet-4-5@20250929", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        )
        assert [b.text for b in msg.content if b.type == "text"] == ["Hello from Claude"]
        async with client.messages.stream(
            model="claude-sonnet-4-5@20250929", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as s:
            assert await s.get_final_text() == "Streamed Claude"
    assert vertex_upstream.grants == 1
    rec = vertex_upstream.requests[-1]
    assert rec.path.endswith("/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict")


async def test_google_genais_vertex_client(vertex_upstream: VertexUpstream) -> None:
    vertex_upstream.script(Reply(text="Hello from Gemini"), Reply(text="Streamed Gemini", chunk_size=4))
    client = google.genai.Client(
        vertexai=True, project=vertex_upstream.project, location=vertex_upstream.location,
        credentials=credentials(vertex_upstream),
        http_options=types.HttpOptions(base_url=vertex_upstream.url, api_version="v1"),
    )  # fmt: skip
    got = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert got.text == "Hello from Gemini"
    parts = [
        c.text async for c in await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi")
    ]
    assert "".join(p or "" for p in parts) == "Streamed Gemini"
    assert vertex_upstream.grants == 1
    assert vertex_upstream.requests[-1].path == (
        "/v1/projects/test-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
    )
