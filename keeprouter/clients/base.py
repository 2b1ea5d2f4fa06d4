"""`ClientApi`: everything the routes need to know about one client API, as one typed row.

A new client API is one more folder of pure translators plus one row in `registry`; the gateway,
billing and routing never learn that it exists (they see canonical requests and events only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from keeprouter.errors import GatewayError, InvalidRequest
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent, Usage


@dataclass(frozen=True, slots=True)
class Reply:
    """What a renderer knows of an answer besides its content. `id` is the generation id;
    `request` is the parsed request (None when the request failed before one was served)."""

    id: str
    model: str
    created: int
    provider: str | None = None
    request: ChatRequest | None = None
    prompt_estimate: int | None = None  # our offline count of the prompt, for clients that want it early
    cost: Decimal | None = None


class StreamEncoder(Protocol):
    """Canonical events -> the client's stream frames; `error` writes an in-band failure (the
    stream ends after it)."""

    def feed(self, ev: StreamEvent) -> list[bytes]: ...

    def error(self, err: GatewayError) -> list[bytes]: ...


class StreamTotals(Protocol):
    """What a stream that ran to its end knows when its last frames are written: the final usage
    (counted offline when the upstream sent none) and what the key is charged for it."""

    def final_usage(self) -> Usage: ...

    def cost(self, u: Usage | None = None) -> Decimal: ...


E = TypeVar("E", bound=StreamEncoder)


@dataclass(frozen=True, slots=True)
class ClientApi(Generic[E]):
    """One client API. `name` is its label in metrics, traces and stored generations.
    `path_hints`/`header_hints` claim a request no handler has (for the shape of a 404/405)."""

    name: str
    parse_request: Callable[[dict[str, Any]], ChatRequest]
    render_response: Callable[[ChatResponse, Reply], dict[str, Any]]
    encoder: Callable[[Reply], E]
    end: Callable[[E, StreamTotals], list[bytes]]
    error_body: Callable[[GatewayError], dict[str, Any]]
    path_hints: tuple[str, ...] = ()
    header_hints: tuple[str, ...] = ()

    def render_error(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        """`err` as this API's (HTTP status, JSON body)."""
        return err.status, self.error_body(err)

    def claims(self, path: str, headers: Mapping[str, str]) -> bool:
        return any(h in headers for h in self.header_hints) or any(p in path for p in self.path_hints)


def fallback_models(body: dict[str, Any], *keys: str) -> list[str]:
    """The fallback model ids a request names under the first of `keys` present (OpenRouter's
    `models`; the Messages `fallbacks`): a list of ids, or of `{"model": id}` objects."""
    for key in keys:
        raw = body.get(key)
        if raw is None:
            continue
        if not isinstance(raw, list):
            raise InvalidRequest(f"`{key}` must be a list of model ids", param=key)
        out: list[str] = []
        for m in raw:
            mid = m.get("model") if isinstance(m, dict) else m
            if not isinstance(mid, str) or not mid:
                raise InvalidRequest(f"`{key}` must be a list of model ids", param=key)
            out.append(mid)
        return out
    return []
