"""Every Converse body the translator writes passes AWS's own SDK validation: botocore's parameter
validator over the bedrock-runtime service model (field names, unions with exactly one member,
required members, types, minimum lengths and values), the same check boto3 makes before sending.
(It does not check enums or patterns: the emulator does, in test_converse_rules.)"""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from keeprouter.providers.bedrock.request import build_request

MODEL = botocore.session.get_session().get_service_model("bedrock-runtime")
CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}
EPHEMERAL = {"type": "ephemeral"}
WEATHER = Tool(name="get_weather", description="Weather", parameters={"type": "object"}, cache_control=EPHEMERAL)


def problems(operation: str, body: dict[str, Any], model: str) -> str:
    report = ParamValidator().validate({"modelId": model, **body}, MODEL.operation_model(operation).input_shape)
    return report.generate_report() if report.has_errors() else ""


def tool_loop() -> list[Message]:
    long_id = "call_" + "z" * 80
    return [
        Message(role="assistant", content=[TextPart(text="Hello! How can I help?")]),
        Message(
            role="user",
            content=[
                TextPart(text="Look at these", cache_control=EPHEMERAL),
                ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                DocumentPart(data="JVBERi0=", media_type="application/pdf", filename="Q3  report (v2).pdf"),
            ],
        ),
        Message(
            role="assistant",
            content=[
                ThinkingPart(text="Two cities.", signature="sig", origin="bedrock"),
                ToolCallPart(id="functions.get_weather:0", name="get_weather", arguments='{"city":"Paris"}'),
                ToolCallPart(id=long_id, name="get_weather", arguments='{"city":"Rome"}'),
            ],
        ),
        Message(
            role="user",
            content=[
                ToolResultPart(tool_call_id="functions.get_weather:0", content=[TextPart(text="sunny")]),
                ToolResultPart(tool_call_id=long_id, content=[], is_error=True),
            ],
        ),
    ]


REQUESTS = {
    "everything": ChatRequest(
        model="m",
        system=[TextPart(text="Be brief.", cache_control=ONE_HOUR)],
        messages=tool_loop(),
        tools=[WEATHER],
        tool_choice=ToolChoice(mode="auto"),
        max_tokens=4096,
        temperature=0.3,
        top_k=40,
        stop=["", "END"],
        reasoning=Reasoning(effort="low"),
    ),
    "forced": ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="Weather?")])],
        tools=[WEATHER],
        tool_choice=ToolChoice(mode="tool", name="get_weather"),
        top_p=0.9,
    ),
    "structured": ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="A city?")])],
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
    ),
}


@pytest.mark.parametrize("model", [CLAUDE, NOVA, LLAMA])
@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_converse_bodies_pass_the_sdks_validation(name: str, model: str) -> None:
    body = build_request(REQUESTS[name], model, default_max_tokens=1024)
    assert problems("Converse", body, model) == ""
    assert problems("ConverseStream", body, model) == ""


def test_the_validator_catches_a_wrong_shape() -> None:
    """The check is not vacuous: an unknown key, a union with two members and a value below its
    minimum fail it."""
    bad = {
        "messages": [{"role": "user", "content": [{"text": "hi", "image": {"format": "png", "source": {}}}]}],
        "inferenceConfig": {"max_tokens": 5, "maxTokens": 0},
    }
    report = problems("Converse", bad, CLAUDE)
    assert 'Unknown parameter in inferenceConfig: "max_tokens"' in report
    assert "tagged union structure messages[0].content[0]" in report and "maxTokens" in report
