"""Vertex AI's credentials: the Authorization header of each request.

A service account signs a JWT and trades it at its key file's `token_uri` for an access token (the
OAuth2 JWT-bearer grant), which google-auth does for us. Its refresh is blocking I/O (a `requests`
POST), so it runs in a worker thread, never on the event loop, and one at a time: concurrent
requests that find the token stale share the same refresh. A token is used until shortly before
its expiry; inside the last minutes it is still sent while a refresh runs in the background, so
requests never wait on a refresh while the token in hand is good.

An express-mode key needs none of this: it goes in `x-goog-api-key` (`ApiKeyAuth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from keeprouter.errors import UpstreamError
from keeprouter.providers.transport import RequestAuth

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
REFRESH_AHEAD = 300.0  # seconds before expiry: refresh in the background, keep using the token
MIN_LEFT = 30.0  # seconds before expiry: too close to send; wait for a new token


# What the Vertex adapter hands its transport (`Transport.authorise`).
Auth = RequestAuth


class ApiKeyAuth:
    """An express-mode API key (Gemini models only)."""

    def __init__(self, key: str) -> None:
        self._headers = {"x-goog-api-key": key}

    async def headers(self) -> Mapping[str, str]:
        return self._headers

    def refused(self) -> None:  # a key is what it is: the 401 reaches the caller as an auth failure
        pass


def _load_credentials(path: str | None) -> Any:
    """google-auth credentials scoped for Vertex: a service-account key file, or (no path) Google's
    application default credentials (GOOGLE_APPLICATION_CREDENTIALS, the metadata server, ...)."""
    import google.auth
    from google.oauth2 import service_account

    if path:
        return service_account.Credentials.from_service_account_file(path, scopes=[SCOPE])  # type: ignore[no-untyped-call]
    credentials, _project = google.auth.default(scopes=[SCOPE])
    return credentials


def _refresh(credentials: Any) -> None:
    import google.auth.transport.requests

    credentials.refresh(google.auth.transport.requests.Request())


class TokenAuth:
    """OAuth2 access tokens from google-auth credentials, cached until shortly before expiry.

    `credentials` is anything with google-auth's `token` / `expiry` / `refresh(request)`; loaded
    lazily from `path` on the first request (reading a key file is I/O too)."""

    def __init__(
        self,
        provider_id: str,
        path: str | None,
        *,
        credentials: Any = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.provider_id = provider_id
        self.path = path
        self.credentials = credentials
        self.refreshes = 0  # completed refreshes (tests read it)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))
        self._lock = asyncio.Lock()
        self._ahead: asyncio.Task[None] | None = None

    def _left(self) -> float:
        """Seconds the current token has left (0 when there is none)."""
        token = getattr(self.credentials, "token", None)
        expiry = getattr(self.credentials, "expiry", None)
        if not token:
            return 0.0
        if expiry is None:  # google-auth's "does not expire"
            return float("inf")
        left: float = (expiry - self._clock()).total_seconds()
        return left

    def _bearer(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.credentials.token}"}

    async def headers(self) -> Mapping[str, str]:
        left = self._left()
        if left > REFRESH_AHEAD:
            return self._bearer()
        if left > MIN_LEFT:  # good for now: refresh behind the requests' backs
            if self._ahead is None or self._ahead.done():
                self._ahead = asyncio.create_task(self._refresh_ahead())
            return self._bearer()
        await self._refresh_once()
        return self._bearer()

    def refused(self) -> None:
        """A token Google no longer takes (revoked, or the clocks disagree): the next request gets a
        new one rather than failing with this one until its expiry."""
        if self.credentials is not None:
            self.credentials.token = None

    async def _refresh_ahead(self) -> None:
        # A failure here is not lost: the request that finds the token too old retries and raises.
        with contextlib.suppress(UpstreamError):
            await self._refresh_once()

    async def _refresh_once(self) -> None:
        async with self._lock:  # one refresh at a time; whoever waited finds the new token
            if self._left() > REFRESH_AHEAD:
                return
            try:
                if self.credentials is None:
                    self.credentials = await asyncio.to_thread(_load_credentials, self.path)
                await asyncio.to_thread(_refresh, self.credentials)
            except Exception as e:  # google-auth's RefreshError, a bad key file, no network
                raise UpstreamError(
                    f"provider {self.provider_id} could not get a Google access token: {type(e).__name__}: {e}"
                ) from None
            self.refreshes += 1

    async def close(self) -> None:
        if self._ahead is not None and not self._ahead.done():
            self._ahead.cancel()
