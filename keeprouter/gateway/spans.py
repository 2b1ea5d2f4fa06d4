"""The upstream attempt's span (OpenTelemetry, when configured). Tracing is off in the common case:
then `start_attempt` returns None and the request path never calls `end_attempt`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keeprouter.config import Config
from keeprouter.formats.canonical import ChatResponse
from keeprouter.routing.select import Candidate

if TYPE_CHECKING:
    from keeprouter.observe.tracing import Tracing


def start_attempt(tracing: Tracing | None, config: Config, cand: Candidate, max_tokens: int | None) -> Any:
    """The attempt's span, or None when tracing is off."""
    if tracing is None:
        return None
    ep = cand.endpoint
    base_url = getattr(config.providers.get(ep.provider), "base_url", "")
    return tracing.start_attempt(ep.provider, ep.model, base_url, max_tokens)


def end_attempt(tracing: Tracing | None, span: Any, error: BaseException | None, response: object = None) -> None:
    """End a span `start_attempt` returned (never None): with the error's kind (never its text), or
    with the whole answer's model and usage when `response` is one."""
    assert tracing is not None
    kind = None if error is None else type(error).__name__
    if isinstance(response, ChatResponse):
        u = response.usage
        tracing.end_attempt(span, kind, response.model, u.input_tokens, u.output_tokens)
    else:
        tracing.end_attempt(span, kind, None, 0, 0)
