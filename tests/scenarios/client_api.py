"""The client-API row: how a scenario's request goes through the gateway with the API's official
SDK, streamed or not, and how the answer is read back into a neutral ``Result``.

SDK clients are made once per gateway and key (``connect``) and shared by a module's scenarios:
making one costs tens of milliseconds, more than a scenario's request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .neutral import Ask, Failure, Finish, Result, error_shape

SDK_TIMEOUT = 20.0  # seconds; every SDK call is bounded


class Closable(Protocol):
    async def close(self) -> None: ...


@dataclass(frozen=True)
class ClientApi:
    name: str
    connect: Callable[[str, str], Closable]  # (gateway URL, key) -> the SDK's client
    send: Callable[[Any, str, Ask, bool], Awaitable[Result]]  # (that client, model, ask, stream) -> result
    finish_words: dict[Finish, str]  # the API's own word for each way an answer ends
    id_prefix: str  # what the answer's id starts with
    reports_cost: bool  # the answer's usage carries what it cost
    error_shape: str  # the shape (``neutral.error_shape``) of its error bodies
    stream_error_shape: str  # the shape of an error inside a committed stream
    # optional parts of ``Ask`` the API can express: "stop" (stop sequences), "image" (image input)
    supports: frozenset[str] = frozenset()


class HttpResponse(Protocol):
    """The part of the SDKs' HTTP response (their own httpx fork) read here."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Any: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def http_failure(response: HttpResponse) -> Failure:
    """An error answer (a status other than 200) as the client got it."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    inner = body.get("error") if isinstance(body, dict) else None
    return Failure(
        status=response.status_code,
        shape=error_shape(body),
        message=str(inner.get("message", "")) if isinstance(inner, dict) else "",
        retry_after=response.headers.get("retry-after"),
    )
