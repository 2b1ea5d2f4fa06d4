"""Request signing: SigV4 on fixed inputs (AWS's published test-suite vector, and a Bedrock request
checked against a signature computed here from the SigV4 spec), the credential chain, API keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path

import botocore.auth
import pytest

from keeprouter.providers.bedrock.auth import BearerAuth, NoCredentials, SigV4Signer

# AWS's SigV4 test suite ("get-vanilla"): example credentials, 2015-08-30T12:36:00Z, service "service"
SUITE_KEY, SUITE_SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
GET_VANILLA = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"


def freeze(monkeypatch: pytest.MonkeyPatch, when: dt.datetime) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when)


def test_published_test_suite_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze(monkeypatch, dt.datetime(2015, 8, 30, 12, 36, 0))
    signer = SigV4Signer("us-east-1", access_key=SUITE_KEY, secret_key=SUITE_SECRET, service="service")
    headers = signer.sign("GET", "https://example.amazonaws.com/", {}, b"")
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={GET_VANILLA}"
    )


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def spec_signature(secret: str, amz_date: str, region: str, canonical: str) -> str:
    """SigV4 from its definition: the signing key derived from date, region, service, then the
    HMAC of the string to sign."""
    scope = f"{amz_date[:8]}/{region}/bedrock/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(f"AWS4{secret}".encode(), amz_date[:8])
    for part in (region, "bedrock", "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_bedrock_request_signature_matches_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model id's `:` is `%3A` in the URL and `%253A` in the canonical request (every service but
    S3 encodes the path twice); the signing name is bedrock; the session token is signed."""
    freeze(monkeypatch, dt.datetime(2025, 1, 2, 3, 4, 5))
    signer = SigV4Signer("eu-west-1", access_key="AKIDTEST", secret_key="s3cr3t/key", session_token="TOKEN+1=")
    body = b'{"messages":[]}'
    url = "https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu.anthropic.claude-v1%3A0/converse"
    headers = signer.sign("POST", url, {"Content-Type": "application/json"}, body)
    canonical = "\n".join(
        [
            "POST",
            "/model/eu.anthropic.claude-v1%253A0/converse",
            "",
            "content-type:application/json",
            "host:bedrock-runtime.eu-west-1.amazonaws.com",
            "x-amz-date:20250102T030405Z",
            "x-amz-security-token:TOKEN+1=",
            "",
            "content-type;host;x-amz-date;x-amz-security-token",
            hashlib.sha256(body).hexdigest(),
        ]
    )
    expected = spec_signature("s3cr3t/key", "20250102T030405Z", "eu-west-1", canonical)
    assert headers["X-Amz-Security-Token"] == "TOKEN+1="
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20250102/eu-west-1/bedrock/aws4_request, "
        f"SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature={expected}"
    )
    assert not signer.needs_io


def _no_aws_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_standard_chain_when_no_keys_are_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_aws_files(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    signer = SigV4Signer("us-east-1")
    assert signer.needs_io
    headers = signer.sign("POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse", {}, b"{}")
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDFROMENV/")


def test_no_credentials_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_aws_files(monkeypatch, tmp_path)
    with pytest.raises(NoCredentials, match="no AWS credentials"):
        SigV4Signer("us-east-1").sign("POST", "https://h/model/m/converse", {}, b"{}")


def test_api_key_is_a_bearer_token() -> None:
    headers = BearerAuth("br-key").sign("POST", "https://h/model/m/converse", {"Content-Type": "application/json"}, b"")
    assert headers == {"Content-Type": "application/json", "Authorization": "Bearer br-key"}
