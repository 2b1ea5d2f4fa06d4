"""The Azure emulator speaks Azure's wire: the `openai` SDK's AzureOpenAI client (deployments API) and a
plain OpenAI client on `/openai/v1/` work against it, and it refuses what Azure refuses."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from upstreams.azure_server import AzureUpstream
from upstreams.script import Reply, ToolCall

MESSAGES: list[Any] = [{"role": "user", "content": "Hi"}]


def azure_sdk(up: AzureUpstream, **kw: Any) -> openai.AsyncAzureOpenAI:
    kw.setdefault("api_key", up.expected_key)
    return openai.AsyncAzureOpenAI(azure_endpoint=up.url, api_version="2024-10-21", max_retries=0, **kw)


async def test_azure_sdk_on_the_deployments_api(azure_upstream: AzureUpstream) -> None:
    azure_upstream.script(Reply(text="Hello there", tool_calls=[ToolCall("call_1", "f", {"a": 1})]))
    async with azure_sdk(azure_upstream) as c:
        r = await c.chat.completions.create(model="gpt4o-prod", messages=MESSAGES)
    assert r.model == "gpt-4o-2024-11-20"
    assert r.choices[0].message.content == "Hello there"
    assert r.choices[0].message.tool_calls and r.choices[0].message.tool_calls[0].id == "call_1"
    assert (r.model_extra or {})["prompt_filter_results"][0]["prompt_index"] == 0
    rec = azure_upstream.requests[-1]
    assert (rec.path, rec.query) == ("/openai/deployments/gpt4o-prod/chat/completions", {"api-version": "2024-10-21"})
    assert rec.header("api-key") == azure_upstream.expected_key


async def test_azure_sdk_stream_starts_with_the_prompt_filter_chunk(azure_upstream: AzureUpstream) -> None:
    azure_upstream.script(Reply(text="Hello there"))
    async with azure_sdk(azure_upstream) as c:
        chunks = [ch async for ch in await c.chat.completions.create(model="o4mini", messages=MESSAGES, stream=True)]
    assert chunks[0].choices == [] and chunks[0].id == ""
    assert "prompt_filter_results" in (chunks[0].model_extra or {})
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks[1:] if ch.choices) == "Hello there"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_entra_token_as_bearer(azure_upstream: AzureUpstream) -> None:
    async with azure_sdk(azure_upstream, api_key=None, azure_ad_token="entra-token-for-tests") as c:
        r = await c.chat.completions.create(model="gpt4o-prod", messages=MESSAGES)
    assert r.choices[0].message.content == "Hello!"


async def test_plain_client_on_the_v1_api(azure_upstream: AzureUpstream) -> None:
    azure_upstream.script(Reply(text="v1 answer", stop="refusal"))
    async with openai.AsyncOpenAI(base_url=azure_upstream.v1_url, api_key=azure_upstream.expected_key,
                                  max_retries=0) as c:  # fmt: skip
        r = await c.chat.completions.create(model="gpt4o-prod", messages=MESSAGES)
        models = await c.models.list()
    assert r.choices[0].finish_reason == "content_filter"
    assert (r.choices[0].model_extra or {})["content_filter_results"]["violence"]["filtered"] is True
    assert {m.id for m in models.data} == {"gpt4o-prod", "o4mini"}
    assert azure_upstream.requests[0].path == "/openai/v1/chat/completions"


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/openai/deployments/gpt4o-prod/chat/completions", {"api-key": AzureUpstream.DEFAULT_KEY}, 404, "404"),
        ("/openai/deployments/gpt4o-prod/chat/completions?api-version=2031-01-01", {}, 400, "BadRequest"),
        ("/openai/deployments/nope/chat/completions?api-version=2024-10-21",
         {"api-key": AzureUpstream.DEFAULT_KEY}, 404, "DeploymentNotFound"),
        ("/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21", {"api-key": "wrong"}, 401, "401"),
        # the deployments API does not take the key as a bearer token
        ("/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
         {"Authorization": f"Bearer {AzureUpstream.DEFAULT_KEY}"}, 401, "401"),
        ("/openai/v1/chat/completions?api-version=2024-10-21",
         {"api-key": AzureUpstream.DEFAULT_KEY}, 400, "BadRequest"),
        ("/openai/chat/completions", {"api-key": AzureUpstream.DEFAULT_KEY}, 404, "404"),
    ],
)  # fmt: skip
async def test_refusals_in_azures_shape(
    azure_upstream: AzureUpstream, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    body = {"model": "gpt4o-prod", "messages": MESSAGES}
    async with aiohttp.ClientSession() as s, s.post(azure_upstream.base_url + path, json=body, headers=headers) as r:
        assert r.status == status
        err = (await r.json())["error"]
    assert err["code"] == code and err["message"]


async def test_v1_unknown_deployment_and_prompt_filter(azure_upstream: AzureUpstream) -> None:
    azure_upstream.script(azure_upstream.prompt_filtered())
    async with openai.AsyncOpenAI(base_url=azure_upstream.v1_url, api_key=azure_upstream.expected_key,
                                  max_retries=0) as c:  # fmt: skip
        with pytest.raises(openai.NotFoundError):
            await c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(openai.BadRequestError) as e:
            await c.chat.completions.create(model="gpt4o-prod", messages=MESSAGES)
    assert e.value.code == "content_filter"
    assert isinstance(e.value.body, dict) and e.value.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
