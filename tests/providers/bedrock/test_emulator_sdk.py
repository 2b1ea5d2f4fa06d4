"""The Bedrock emulator speaks real Converse / ConverseStream with real SigV4: AWS's own SDK (boto3),
pointed straight at it, must work, and a wrong secret must be refused as AWS refuses it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
from upstreams import Fault, Reply, ToolCall
from upstreams.bedrock_server import ACCESS_KEY, REGION, SECRET_KEY, BedrockUpstream
from upstreams.embeddings import vector_for

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
MESSAGES: list[Any] = [{"role": "user", "content": [{"text": "Weather in Paris and Rome?"}]}]
TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]}


async def call(server: BedrockUpstream, op: str, secret: str = SECRET_KEY, **kw: Any) -> Any:
    """One boto3 bedrock-runtime call (in a thread: boto3 blocks), its stream read whole; the
    client is closed after, so no socket outlives the test."""

    def run() -> Any:
        c = boto3.client(
            "bedrock-runtime",
            region_name=REGION,
            endpoint_url=server.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        try:
            r = getattr(c, op)(modelId=MODEL, messages=MESSAGES, **kw)
            if op != "converse_stream":
                return r
            try:
                return list(r["stream"])
            finally:
                r["stream"].close()
        finally:
            c.close()

    return await asyncio.to_thread(run)


async def test_converse_with_parallel_tool_calls(bedrock_upstream: BedrockUpstream) -> None:
    calls = [
        ToolCall("tooluse_a", "get_weather", {"city": "Paris"}),
        ToolCall("tooluse_b", "get_weather", {"city": "Rome"}),
    ]
    bedrock_upstream.script(Reply(text="Checking.", tool_calls=calls, input_tokens=20, output_tokens=9, cache_read=4))
    r = await call(bedrock_upstream, "converse", toolConfig=TOOLS)
    content = r["output"]["message"]["content"]
    assert content[0] == {"text": "Checking."}
    assert [b["toolUse"]["toolUseId"] for b in content[1:]] == ["tooluse_a", "tooluse_b"]
    assert content[2]["toolUse"]["input"] == {"city": "Rome"}
    assert r["stopReason"] == "tool_use"
    assert r["usage"]["inputTokens"] == 20 and r["usage"]["cacheReadInputTokens"] == 4
    rec = bedrock_upstream.requests[0]
    assert rec.path == f"/model/{MODEL}/converse"


async def test_converse_stream_decodes_with_the_sdk(bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Reply(text="Hello there", thinking="Let me think", signature="sig-1", chunk_size=4))
    events = await call(bedrock_upstream, "converse_stream")
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    deltas = [e["contentBlockDelta"]["delta"] for e in events if "contentBlockDelta" in e]
    assert "".join(d["text"] for d in deltas if "text" in d) == "Hello there"
    reasoning = [d["reasoningContent"] for d in deltas if "reasoningContent" in d]
    assert "".join(r.get("text", "") for r in reasoning) == "Let me think"
    assert reasoning[-1] == {"signature": "sig-1"}


async def test_stream_exception_reaches_the_sdk(bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Fault(stream_error_after=2, body={"type": "throttlingException", "message": "slow down"}))
    with pytest.raises(botocore.exceptions.EventStreamError, match="slow down"):
        await call(bedrock_upstream, "converse_stream")


async def test_wrong_secret_is_refused_as_aws_does(bedrock_upstream: BedrockUpstream) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        await call(bedrock_upstream, "converse", secret="wrong")
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert bedrock_upstream.pending == 0 and all(r.item is None for r in bedrock_upstream.requests)


async def test_errors_carry_their_type(bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Fault(status=429))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        await call(bedrock_upstream, "converse")
    assert e.value.response["Error"]["Code"] == "ThrottlingException"


async def invoke(server: BedrockUpstream, model: str, body: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """boto3's InvokeModel (SigV4-signed by the SDK): the parsed body and the HTTP headers."""

    def run() -> tuple[Any, dict[str, str]]:
        c = boto3.client(
            "bedrock-runtime", region_name=REGION, endpoint_url=server.url,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip
        try:
            r = c.invoke_model(modelId=model, body=json.dumps(body), contentType="application/json")
            return json.loads(r["body"].read()), r["ResponseMetadata"]["HTTPHeaders"]
        finally:
            c.close()

    return await asyncio.to_thread(run)


async def test_invoke_model_embeddings_with_the_sdk(bedrock_upstream: BedrockUpstream) -> None:
    titan, _ = await invoke(bedrock_upstream, "amazon.titan-embed-text-v2:0", {"inputText": "hello", "dimensions": 256})
    assert titan["embedding"] == vector_for("hello", 256) and titan["inputTextTokenCount"] == 1
    texts = ["one doc", "another doc here"]
    cohere, headers = await invoke(
        bedrock_upstream, "cohere.embed-english-v3", {"texts": texts, "input_type": "search_document"}
    )
    assert cohere["embeddings"] == [vector_for(t) for t in texts]
    assert headers["x-amzn-bedrock-input-token-count"] == "5"
