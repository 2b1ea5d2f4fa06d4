"""Fixtures for the Vertex tests: a test service account (a fresh RSA key, its JSON key file) and the
Vertex emulator on 127.0.0.1 whose token endpoint is the key file's `token_uri`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from upstreams.vertex_server import VertexUpstream

EMAIL = "keeprouter-test@test-project.iam.gserviceaccount.com"


@dataclass
class ServiceAccount:
    key: rsa.RSAPrivateKey
    email: str = EMAIL

    def write(self, path: Path, token_uri: str) -> Path:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "test-key-1",
            "private_key": pem,
            "client_email": self.email,
            "client_id": "1",
            "token_uri": token_uri,
        }
        path.write_text(json.dumps(info))
        return path


@pytest.fixture(scope="session")
def service_account() -> ServiceAccount:
    return ServiceAccount(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest_asyncio.fixture
async def vertex_upstream(service_account: ServiceAccount) -> AsyncIterator[VertexUpstream]:
    async with VertexUpstream(service_account.key.public_key(), service_account.email) as server:
        yield server


@pytest.fixture
def key_file(vertex_upstream: VertexUpstream, service_account: ServiceAccount, tmp_path: Path) -> Path:
    return service_account.write(tmp_path / "sa.json", vertex_upstream.token_uri)
