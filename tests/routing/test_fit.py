"""Requests are fitted to each endpoint's limits before they go upstream."""

from __future__ import annotations

from decimal import Decimal

from keeprouter.config import EndpointConfig, Pricing, Timeouts
from keeprouter.formats.canonical import ChatRequest, Message, Reasoning, TextPart
from keeprouter.gateway import fit


def endpoint(caps: set[str], max_out: int | None) -> EndpointConfig:
    return EndpointConfig("p", "m", Pricing(Decimal(1), Decimal(1)), frozenset(caps), 1000, max_out, Timeouts())


def request(**kw: object) -> ChatRequest:
    return ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="hi")])], **kw)  # type: ignore[arg-type]


def test_untouched_request_is_not_copied() -> None:
    req = request(max_tokens=100)
    assert fit(req, endpoint({"streaming"}, 200)) is req


def test_max_tokens_capped_at_the_endpoint_output_limit() -> None:
    assert fit(request(max_tokens=32000), endpoint({"streaming"}, 16384)).max_tokens == 16384


def test_reasoning_dropped_for_endpoints_without_it() -> None:
    req = request(reasoning=Reasoning(effort="high"))
    assert fit(req, endpoint({"streaming"}, None)).reasoning is None
    assert fit(req, endpoint({"reasoning"}, None)).reasoning == Reasoning(effort="high")
