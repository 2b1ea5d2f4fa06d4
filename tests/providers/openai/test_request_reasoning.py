"""Reasoning sent back to an OpenAI-format upstream: `reasoning_content` on tool-call turns only,
never another kind's signed state; the thinking-mode rule learned from DeepSeek's 400."""

from __future__ import annotations

from typing import Any

from keeprouter.formats.canonical import ChatRequest, Message, Reasoning, TextPart, ThinkingPart, ToolCallPart
from keeprouter.providers.openai import hosts
from keeprouter.providers.openai.request import build_request

DEEPSEEK_400 = "The reasoning_content in the thinking mode must be passed back to the API."
KIMI_400 = "thinking is enabled but reasoning_content is missing in assistant tool call message at index 2"


def _req(*assistant: Message, **kw: object) -> ChatRequest:
    return ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="q")]), *assistant], **kw)  # type: ignore[arg-type]


def test_reasoning_content_only_on_tool_call_turns_and_only_unsigned_text() -> None:
    call = ToolCallPart(id="c", name="f", arguments="{}")
    req = _req(
        Message(role="assistant", content=[ThinkingPart(text="why"), ThinkingPart(text=" so"), call]),
        Message(role="assistant", content=[ThinkingPart(text="chat only"), TextPart(text="hi")]),
        Message(
            role="assistant",
            content=[
                ThinkingPart(text="t", signature="S", origin="anthropic"),
                ThinkingPart(redacted="R", origin="anthropic"),
                call,
            ],
        ),
    )
    out = build_request(req, "m")["messages"]
    assert out[1]["reasoning_content"] == "why so"
    assert "reasoning_content" not in out[2]  # DeepSeek ignores it there (and older models refuse it)
    assert "reasoning_content" not in out[3]  # Anthropic's signed thinking is not DeepSeek's to see


def test_openrouter_reasoning_fields_never_reach_the_upstream() -> None:
    req = _req(reasoning=Reasoning(effort="high", exclude=True), extra={"service_tier": "auto"})
    body = build_request(req, "m")
    assert body["reasoning_effort"] == "high"
    assert not {"reasoning", "include_reasoning"} & set(body)
    assert "reasoning_effort" not in build_request(_req(reasoning=Reasoning(enabled=False, exclude=True)), "m")


def test_thinking_mode_rule_learned_from_deepseek_and_kimi_then_applied() -> None:
    for message in (DEEPSEEK_400, KIMI_400):
        learned = hosts.learn(hosts.PLAIN, message)
        assert learned is not None and learned.reasoning_on_tool_turns
        assert hosts.learn(learned, message) is None  # nothing new: the error is the caller's
    body: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "b"}], "reasoning_content": "r"},
            {"role": "assistant", "content": "no calls"},
        ]
    }
    hosts.apply(hosts.HostQuirks(reasoning_on_tool_turns=True), body)
    assert [m.get("reasoning_content") for m in body["messages"]] == [None, "", "r", None]
    assert hosts.quirks_for("https://api.deepseek.com/v1").reasoning_on_tool_turns
