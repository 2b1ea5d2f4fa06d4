"""Requests are fitted to each endpoint's limits before they go upstream."""

from __future__ import annotations

from decimal import Decimal

from keeprouter.config import EndpointConfig, Pricing, Timeouts
from keeprouter.formats.canonical import ChatRequest, Message, Reasoning, TextPart
from keeprouter.routing.fit import fit


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


def _thinking_request(signature: str) -> ChatRequest:
    from keeprouter.formats.canonical import ThinkingPart

    return ChatRequest(
        model="x",
        source="anthropic",
        messages=[
            Message(role="user", content=[TextPart(text="hi")]),
            Message(
                role="assistant",
                content=[ThinkingPart(text="hmm", signature=signature, origin="anthropic"), TextPart(text="yes")],
            ),
            Message(role="user", content=[TextPart(text="go on")]),
        ],
    )


def test_signed_thinking_replayed_only_to_the_endpoint_that_issued_it() -> None:
    from keeprouter.formats.canonical import ThinkingPart
    from keeprouter.routing.fit import SignatureIssuers

    issuer, other = (
        endpoint({"reasoning"}, None),
        EndpointConfig("q", "m2", Pricing(Decimal(1), Decimal(1)), frozenset({"reasoning"}), 1000, None, Timeouts()),
    )
    issuers = SignatureIssuers()
    issuers.record("sig-A", issuer)
    req = _thinking_request("sig-A")
    assert fit(req, issuer, issuers) is req  # same issuer: byte for byte, no copy
    elsewhere = fit(req, other, issuers)
    assert [type(p) for p in elsewhere.messages[1].content] == [TextPart]  # stripped for another endpoint
    assert any(isinstance(p, ThinkingPart) for p in req.messages[1].content)  # the original is untouched
    unknown = _thinking_request("sig-never-seen")
    assert fit(unknown, other, issuers) is unknown  # unknown issuer: kept


def test_signature_memory_is_bounded() -> None:
    from keeprouter.routing.fit import SignatureIssuers

    issuers = SignatureIssuers(capacity=3)
    ep = endpoint(set(), None)
    for i in range(10):
        issuers.record(f"s{i}", ep)
    assert issuers.issuer("s0") is None and issuers.issuer("s9") == "p|m"
