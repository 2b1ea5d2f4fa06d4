"""Request signing for Bedrock: SigV4 (AWS keys or the standard credential chain) or an API key.

A signer turns `(method, url, headers, body)` into the headers to send. The URL must be sent
exactly as signed (already percent-encoded: a model id's `:` is `%3A` on the wire, and SigV4 then
encodes that path once more in its canonical request, as AWS does for every service but S3).

SigV4 is botocore's own signer (`SigV4Auth`), never hand-rolled crypto. The signing name is
`bedrock` even though the host is `bedrock-runtime.{region}.amazonaws.com`. Keys come from the
config (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`); without them, from the
standard chain (environment, shared config/credentials files, SSO, container or instance roles),
resolved on first use and refreshed by botocore before they expire. Resolving or refreshing may
do I/O, so `needs_io` tells the adapter to sign off the event loop then.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.session import get_session

SIGNING_NAME = "bedrock"


class NoCredentials(Exception):
    """No AWS credentials: none configured and the standard chain found none."""


class RequestSigner(Protocol):
    needs_io: bool

    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]: ...


class BearerAuth:
    """A Bedrock API key, sent as `Authorization: Bearer`."""

    needs_io = False

    def __init__(self, api_key: str) -> None:
        self._value = f"Bearer {api_key}"

    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        return {**headers, "Authorization": self._value}


class SigV4Signer:
    def __init__(
        self,
        region: str,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        service: str = SIGNING_NAME,
    ) -> None:
        self.region = region
        self.service = service
        self._static = Credentials(access_key, secret_key, session_token or None) if access_key and secret_key else None
        self.needs_io = self._static is None
        self._chain: Credentials | None = None
        self._lock = threading.Lock()

    def credentials(self) -> ReadOnlyCredentials:
        """The keys to sign with now (frozen, so one request never mixes two refreshes)."""
        creds = self._static
        if creds is None:
            with self._lock:
                if self._chain is None:
                    self._chain = get_session().get_credentials()
                creds = self._chain
            if creds is None:
                raise NoCredentials(
                    "no AWS credentials: set aws_access_key_id/aws_secret_access_key, "
                    "an api_key, or the standard AWS credential chain"
                )
        frozen: ReadOnlyCredentials = creds.get_frozen_credentials()
        return frozen

    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        creds = self.credentials()
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(Credentials(creds.access_key, creds.secret_key, creds.token), self.service, self.region).add_auth(
            request
        )
        return {k: str(v) for k, v in request.headers.items()}
