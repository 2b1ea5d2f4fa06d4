"""KeepRouter's one error tree. Every error has a kind and an HTTP status; each client API renders it
in its own shape (see each `ClientApi` row in `clients.registry`: its `render_error`).

    GatewayError                      kind                    status
    ├── InvalidRequest                invalid_request         400
    │   └── ContextLengthExceeded     context_length_exceeded 400   (the prompt fits no endpoint)
    ├── AuthenticationFailed          authentication          401
    ├── InsufficientCredit            payment_required        402
    ├── PermissionDenied              permission_denied       403
    ├── NotFound                      not_found               404
    ├── PayloadTooLarge               payload_too_large       413
    ├── RateLimited                   rate_limit_exceeded     429   (keeps the upstream's retry-after)
    ├── NoEndpointAvailable           provider_overloaded     503
    ├── StoreUnavailable              service_unavailable     503   (the database does not answer)
    └── UpstreamError                 provider_unavailable    502   (status may be the upstream's 4xx)
        └── UpstreamTimeout           timeout                 504
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    kind = "server"
    status = 500
    headers: dict[str, str] | None = None  # extra response headers (our own 429's X-RateLimit-*)

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        metadata: dict[str, object] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param  # the offending request field, for APIs whose errors name it (OpenAI's)
        if status is not None:
            self.status = status
        self.retry_after = retry_after
        self.metadata = metadata


class InvalidRequest(GatewayError):
    kind = "invalid_request"
    status = 400


class ContextLengthExceeded(InvalidRequest):
    """The prompt alone does not fit any endpoint's context. Rendered with each provider's own
    wording, which clients act on (Claude Code compacts on Anthropic's "prompt is too long")."""

    kind = "context_length_exceeded"

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(f"prompt is too long: {tokens} tokens > {limit} maximum")
        self.tokens = tokens
        self.limit = limit


class AuthenticationFailed(GatewayError):
    kind = "authentication"
    status = 401


class InsufficientCredit(GatewayError):
    kind = "payment_required"
    status = 402


class PermissionDenied(GatewayError):
    kind = "permission_denied"
    status = 403


class NotFound(GatewayError):
    kind = "not_found"
    status = 404


class PayloadTooLarge(GatewayError):
    kind = "payload_too_large"
    status = 413


class RateLimited(GatewayError):
    kind = "rate_limit_exceeded"
    status = 429


class NoEndpointAvailable(GatewayError):
    kind = "provider_overloaded"
    status = 503


class StoreUnavailable(GatewayError):
    """The database does not answer (refused, reset, shut down, timed out): nothing is admitted
    without a ledger to charge. Raised by the store backends, which classify their driver's
    failures in one place (store.postgres)."""

    kind = "service_unavailable"
    status = 503

    def __init__(self, message: str = "the database is unavailable; try again shortly", **kw: object) -> None:
        kw.setdefault("retry_after", "1")
        super().__init__(message, **kw)  # type: ignore[arg-type]


class UpstreamError(GatewayError):
    """The upstream failed. `status` is 502 for upstream 5xx/garbage, or the upstream's own 4xx
    (a 400 "prompt is too long" is the caller's problem and keeps its status and message)."""

    kind = "provider_unavailable"
    status = 502

    _KIND_BY_STATUS: ClassVar[dict[int, str]] = {
        400: "invalid_request",
        404: "not_found",
        408: "timeout",
        413: "payload_too_large",
        422: "invalid_request",
        429: "rate_limit_exceeded",
        503: "provider_overloaded",
        504: "timeout",
        529: "provider_overloaded",
    }

    def __init__(self, message: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.kind = self._KIND_BY_STATUS.get(self.status, type(self).kind)

    @property
    def retryable(self) -> bool:
        """Whether another endpoint could succeed where this one failed."""
        return self.status >= 500 or self.status in (408, 429)


class UpstreamTimeout(UpstreamError):
    kind = "timeout"
    status = 504
