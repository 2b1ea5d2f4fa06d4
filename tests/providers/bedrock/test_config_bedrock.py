"""`api: bedrock` in the config: its own keys, the URL derived from the region, secrets redacted."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.config import ConfigError, parse_config
from keeprouter.providers import build_adapter
from keeprouter.providers.bedrock import BedrockAdapter
from keeprouter.providers.bedrock.auth import BearerAuth, SigV4Signer
from keeprouter.providers.transport import provider_secrets


def provider(**keys: Any) -> Any:
    raw = {"providers": {"bd": {"api": "bedrock", **keys}}, "models": {}}
    return parse_config(raw, env={}).providers["bd"]


def test_region_gives_the_default_url_and_sigv4() -> None:
    p = provider(
        region="eu-central-1",
        aws_access_key_id="AKID",
        aws_secret_access_key="secret-value-1",
        aws_session_token="token-value-1",
    )
    assert p.base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    assert p.options == {
        "region": "eu-central-1",
        "aws_access_key_id": "AKID",
        "aws_secret_access_key": "secret-value-1",
        "aws_session_token": "token-value-1",
    }
    adapter = build_adapter(p)
    assert isinstance(adapter, BedrockAdapter) and isinstance(adapter.signer, SigV4Signer)
    assert adapter.signer.region == "eu-central-1" and adapter.signer.service == "bedrock"
    assert {"secret-value-1", "token-value-1"} <= set(provider_secrets(p))
    assert "AKID" not in provider_secrets(p)


def test_model_ids_are_one_encoded_path_segment() -> None:
    adapter = BedrockAdapter(provider(region="us-west-2"))
    assert adapter.url("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "converse") == (
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    )
    arn = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-v1:0"
    assert adapter.url(arn, "converse-stream").endswith(
        "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-v1%3A0"
        "/converse-stream"
    )


def test_api_key_is_bearer() -> None:
    p = provider(region="ap-south-1", api_key="br-key-123456")
    assert p.base_url == "https://bedrock-runtime.ap-south-1.amazonaws.com"
    assert isinstance(BedrockAdapter(p).signer, BearerAuth)


def test_region_required_without_base_url() -> None:
    with pytest.raises(ConfigError, match=r"providers\.bd\.region"):
        provider(aws_access_key_id="a", aws_secret_access_key="b")


def test_region_required_on_a_custom_url_too() -> None:
    with pytest.raises(ConfigError, match=r"providers\.bd\.region"):
        provider(base_url="https://proxy.example/bedrock")
    p = provider(base_url="https://proxy.example/bedrock", region="us-east-2")
    assert p.options["region"] == "us-east-2" and p.base_url == "https://proxy.example/bedrock"


def test_bedrock_keys_belong_to_bedrock_only() -> None:
    raw = {"providers": {"oa": {"api": "openai", "base_url": "https://x", "region": "us-east-1"}}, "models": {}}
    with pytest.raises(ConfigError, match=r"providers\.oa\.region: unknown key for api openai \(a key of bedrock\)"):
        parse_config(raw, env={})


def test_empty_session_token_is_absent() -> None:
    p = provider(region="us-east-1", aws_access_key_id="a", aws_secret_access_key="b", aws_session_token="")
    assert "aws_session_token" not in p.options
