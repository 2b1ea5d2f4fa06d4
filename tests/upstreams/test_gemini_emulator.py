"""The Gemini emulator, proven with Google's own SDK (google-genai): what the SDK accepts from it and what
it sends to it are what the real service answers and takes."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from upstreams.embeddings import vector_for
from upstreams.gemini_server import GeminiUpstream
from upstreams.script import Fault, Reply, ToolCall

# The SDK subclasses aiohttp's ClientSession, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
MODEL = "gemini-3-flash-preview"
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather in a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def client(up: GeminiUpstream, key: str = GeminiUpstream.DEFAULT_KEY) -> genai.Client:
    opts = types.HttpOptions(base_url=up.url, api_version="v1beta", timeout=20_000,
                             retry_options=types.HttpRetryOptions(attempts=1))  # fmt: skip
    return genai.Client(api_key=key, http_options=opts)


async def test_generate(gemini_upstream: GeminiUpstream) -> None:
    gemini_upstream.script(Reply(text="Hi there", input_tokens=11, output_tokens=5, reasoning_tokens=2))
    r = await client(gemini_upstream).aio.models.generate_content(model=MODEL, contents="Hello")
    assert r.text == "Hi there"
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata is not None
    assert (r.usage_metadata.prompt_token_count, r.usage_metadata.candidates_token_count) == (11, 3)
    assert r.usage_metadata.thoughts_token_count == 2
    rec = gemini_upstream.requests[-1]
    assert rec.path == f"/v1beta/models/{MODEL}:generateContent"
    assert rec.header("x-goog-api-key") == GeminiUpstream.DEFAULT_KEY
    assert rec.body["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]


async def test_stream_is_sse_and_the_signature_closes_it(gemini_upstream: GeminiUpstream) -> None:
    gemini_upstream.script(Reply(text="Hello world", chunk_size=4))
    stream = await client(gemini_upstream).aio.models.generate_content_stream(model=MODEL, contents="Hi")
    chunks = [c async for c in stream]
    assert "".join(c.text or "" for c in chunks) == "Hello world"
    assert gemini_upstream.requests[-1].query == {"alt": "sse"}
    last = chunks[-1].candidates[0]  # type: ignore[index]
    assert last.finish_reason == types.FinishReason.STOP
    assert last.content and last.content.parts and last.content.parts[-1].thought_signature  # signature-only part


async def test_gemini3_function_calling_loop_needs_the_signature(gemini_upstream: GeminiUpstream) -> None:
    gemini_upstream.script(
        Reply(
            text=None,
            tool_calls=[
                ToolCall(None, "get_weather", {"city": "Paris"}),
                ToolCall(None, "get_weather", {"city": "Rome"}),
            ],
        ),
        Reply(text="Sunny in both."),
    )
    c = client(gemini_upstream)
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    history: list[types.Content] = [types.Content(role="user", parts=[types.Part(text="Paris and Rome?")])]
    first = await c.aio.models.generate_content(model=MODEL, contents=history, config=config)
    calls = first.candidates[0].content  # type: ignore[index]
    assert calls is not None and calls.parts is not None
    assert [p.function_call.name for p in calls.parts if p.function_call] == ["get_weather", "get_weather"]
    assert calls.parts[0].thought_signature and not calls.parts[1].thought_signature  # parallel: first only
    results = types.Content(role="user", parts=[
        types.Part.from_function_response(name="get_weather", response={"output": "sunny"}),
        types.Part.from_function_response(name="get_weather", response={"output": "sunny"}),
    ])  # fmt: skip

    unsigned = types.Content(role="model", parts=[types.Part(function_call=p.function_call) for p in calls.parts])
    with pytest.raises(errors.ClientError) as refused:
        await c.aio.models.generate_content(model=MODEL, contents=[*history, unsigned, results], config=config)
    assert refused.value.code == 400 and refused.value.status == "INVALID_ARGUMENT"
    assert "missing a thought_signature" in (refused.value.message or "")

    second = await c.aio.models.generate_content(model=MODEL, contents=[*history, calls, results], config=config)
    assert second.text == "Sunny in both."


async def test_count_tokens(gemini_upstream: GeminiUpstream) -> None:
    got = await client(gemini_upstream).aio.models.count_tokens(model=MODEL, contents="How many tokens?")
    assert got.total_tokens and got.total_tokens > 0
    assert gemini_upstream.requests[-1].path == f"/v1beta/models/{MODEL}:countTokens"


async def test_errors_in_gemini_shape(gemini_upstream: GeminiUpstream) -> None:
    gemini_upstream.script(Fault(status=429))
    with pytest.raises(errors.ClientError) as limited:
        await client(gemini_upstream).aio.models.generate_content(model=MODEL, contents="Hi")
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    details = limited.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"} in details
    with pytest.raises(errors.ClientError) as bad_key:
        await client(gemini_upstream, key="wrong").aio.models.generate_content(model=MODEL, contents="Hi")
    assert bad_key.value.code == 400 and "API key not valid" in (bad_key.value.message or "")


async def test_batch_embed_contents_as_the_sdk_sends_and_reads_it(gemini_upstream: GeminiUpstream) -> None:
    config = types.EmbedContentConfig(output_dimensionality=8, task_type="RETRIEVAL_QUERY")
    texts: list[types.ContentUnion] = ["first text", "second"]  # two contents, two embeddings
    models = client(gemini_upstream).aio.models
    r = await models.embed_content(model="gemini-embedding-001", contents=texts, config=config)
    assert [e.values for e in r.embeddings or []] == [vector_for("first text", 8), vector_for("second", 8)]
    rec = gemini_upstream.requests[-1]
    assert rec.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [q["taskType"] for q in rec.body["requests"]] == ["RETRIEVAL_QUERY"] * 2


@pytest.mark.parametrize(
    ("model", "config", "refusal"),
    [
        ("gemini-2.5-pro", types.ThinkingConfig(thinking_budget=0), "only works in thinking mode"),
        ("gemini-2.5-pro", types.ThinkingConfig(thinking_budget=64), "between 128 and 32768"),
        ("gemini-2.5-flash", types.ThinkingConfig(thinking_budget=32768), "between 1 and 24576"),
        ("gemini-2.5-flash-lite", types.ThinkingConfig(thinking_budget=256), "between 512 and 24576"),
        ("gemini-2.5-flash", types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW), "not supported"),
        (
            "gemini-3-pro-preview",
            types.ThinkingConfig(thinking_level=types.ThinkingLevel.MEDIUM),
            "Thinking level MEDIUM is not supported",
        ),
        (
            "gemini-3-pro-preview",
            types.ThinkingConfig(thinking_level=types.ThinkingLevel.MINIMAL),
            "Thinking level MINIMAL is not supported",
        ),
    ],
)
async def test_thinking_config_out_of_the_models_range_is_refused(
    gemini_upstream: GeminiUpstream, model: str, config: types.ThinkingConfig, refusal: str
) -> None:
    cfg = types.GenerateContentConfig(thinking_config=config)
    with pytest.raises(errors.ClientError) as refused:
        await client(gemini_upstream).aio.models.generate_content(model=model, contents="Hi", config=cfg)
    assert refused.value.code == 400 and refusal in (refused.value.message or "")


@pytest.mark.parametrize("budget", [-1, 128, 32768])
async def test_thinking_budgets_in_range_are_taken(gemini_upstream: GeminiUpstream, budget: int) -> None:
    gemini_upstream.script(Reply(text="ok"))
    cfg = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=budget))
    r = await client(gemini_upstream).aio.models.generate_content(model="gemini-2.5-pro", contents="Hi", config=cfg)
    assert r.text == "ok"


async def test_openapi_parameters_refuse_json_schema_keywords(gemini_upstream: GeminiUpstream) -> None:
    """`parameters` is Gemini's OpenAPI-subset Schema: `additionalProperties` is refused there (hence
    KeepRouter's parametersJsonSchema), as the real API refuses it."""
    schema = {"type": "object", "properties": {"o": {"type": "object", "additionalProperties": False}}}
    url = f"{gemini_upstream.url}/v1beta/models/{MODEL}:generateContent"
    headers = {"x-goog-api-key": GeminiUpstream.DEFAULT_KEY}
    gemini_upstream.script(Reply(text="ok"))
    async with aiohttp.ClientSession() as s:
        for field, status in (("parameters", 400), ("parametersJsonSchema", 200)):
            body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                    "tools": [{"functionDeclarations": [{"name": "f", field: schema}]}]}  # fmt: skip
            async with s.post(url, json=body, headers=headers) as r:
                assert r.status == status
                if status == 400:
                    assert 'Unknown name "additionalProperties"' in (await r.json())["error"]["message"]


@pytest.mark.parametrize("part", [
    {"functionCall": {"id": "fc-1", "name": "f", "args": {}}},
    {"functionResponse": {"id": "fc-1", "name": "f", "response": {"output": "x"}}},
])  # fmt: skip
async def test_an_id_on_a_function_part_sent_back_is_refused(gemini_upstream: GeminiUpstream, part: Any) -> None:
    role = "model" if "functionCall" in part else "user"
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": role, "parts": [part]}]}
    url = f"{gemini_upstream.url}/v1beta/models/gemini-2.5-flash:generateContent"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers={"x-goog-api-key": GeminiUpstream.DEFAULT_KEY}) as r:
            assert r.status == 400
            assert 'Unknown name "id" at \'contents[1].parts[0].function_' in (await r.json())["error"]["message"]
