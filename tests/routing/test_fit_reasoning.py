"""What `fit` does with reasoning: dropped (and said) for an endpoint without it, its Anthropic
forms too; reasoning state kept only for the endpoint that issued it."""

from __future__ import annotations

from decimal import Decimal

from keeprouter.config import EndpointConfig, Pricing, Timeouts
from keeprouter.formats.canonical import ChatRequest, Message, Reasoning, TextPart, ThinkingPart, ToolCallPart
from keeprouter.routing.fit import SignatureIssuers, dropped, fit


def endpoint(provider: str, caps: set[str]) -> EndpointConfig:
    return EndpointConfig(provider, "m", Pricing(Decimal(1), Decimal(1)), frozenset(caps), 1000, None, Timeouts())


def loop(*thinking: ThinkingPart, **kw: object) -> ChatRequest:
    assistant = Message(role="assistant", content=[*thinking, ToolCallPart(id="c", name="f", arguments="{}")])
    return ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="q")]), assistant], **kw)  # type: ignore[arg-type]


def test_dropped_reasoning_is_named_only_when_it_was_asked_for() -> None:
    plain = endpoint("p", {"streaming"})
    asked = loop(reasoning=Reasoning(effort="high"))
    assert dropped(asked, fit(asked, plain)) == ("reasoning",)
    assert dropped(asked, fit(asked, endpoint("p", {"reasoning"}))) == ()
    hidden_only = loop(reasoning=Reasoning(enabled=False, exclude=True))  # include_reasoning: false
    assert dropped(hidden_only, fit(hidden_only, plain)) == ()


def test_anthropic_forms_of_reasoning_go_with_it() -> None:
    req = loop(
        reasoning=Reasoning(effort="high"),
        thinking_config={"type": "adaptive"},
        source="anthropic",
        extra={"output_config": {"effort": "high"}, "service_tier": "auto"},
    )
    sent = fit(req, endpoint("p", {"streaming"}))
    assert sent.reasoning is None and sent.thinking_config is None
    assert sent.extra == {"service_tier": "auto"}


def test_an_endpoint_without_reasoning_gets_none_of_the_history_s() -> None:
    req = loop(ThinkingPart(text="why"), ThinkingPart(text="t", signature="S", origin="anthropic"))
    sent = fit(req, endpoint("p", {"tools"}))
    assert [type(p) for p in sent.messages[1].content] == [ToolCallPart]


def test_reasoning_text_and_signatures_stay_with_the_endpoint_that_issued_them() -> None:
    deepseek, claude = endpoint("deepseek", {"reasoning"}), endpoint("claude", {"reasoning"})
    issuers = SignatureIssuers()
    issuers.record("deepseek's thought", deepseek)
    issuers.record("SIG", claude)
    mine, theirs = ThinkingPart(text="deepseek's thought"), ThinkingPart(text="t", signature="SIG", origin="anthropic")
    unknown = ThinkingPart(text="issued before a restart")
    req = loop(mine, theirs, unknown, source="openai")  # Chat clients send signed state back too
    assert fit(req, deepseek, issuers).messages[1].content[:2] == [mine, unknown]
    assert fit(req, claude, issuers).messages[1].content[:2] == [theirs, unknown]
