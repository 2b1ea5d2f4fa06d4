"""The config file: exact contract shape, ${ENV} interpolation, built-in merge, one-line errors."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from keeprouter import kinds
from keeprouter.config import ConfigError, load_config, parse_config

CONTRACT_EXAMPLE = """
database: sqlite:///keeprouter.db
admin_key: ${KEEPROUTER_ADMIN_KEY}
providers:
  mistral:
    api: openai
    base_url: https://api.mistral.ai/v1
    api_key: ${MISTRAL_API_KEY}
    timeout:
      connect: 5
      first_byte: 120
      idle: 120
  anthropic:
    api: anthropic
    base_url: https://api.anthropic.com
    api_key: ${ANTHROPIC_API_KEY}
models:
  ministral-14b-latest:
    name: Ministral 14B
    maker: Mistral AI
    context_length: 131072
    endpoints:
      - provider: mistral
        model: ministral-14b-latest
        pricing: {input: 0.20, output: 0.20}
        capabilities: [streaming, tools]
        context_length: 131072
        max_output_tokens: 16384
        timeout: {first_byte: 300}
"""


def test_contract_example_loads_with_env_interpolation(tmp_path: Path) -> None:
    f = tmp_path / "kr.yaml"
    f.write_text(CONTRACT_EXAMPLE)
    cfg = load_config(f, env={"KEEPROUTER_ADMIN_KEY": "adm", "MISTRAL_API_KEY": "mk", "ANTHROPIC_API_KEY": "ak"})
    assert cfg.admin_key == "adm"
    assert cfg.providers["mistral"].api_key == "mk"
    assert cfg.providers["mistral"].timeout.connect == 5
    ep = cfg.models["ministral-14b-latest"].endpoints[0]
    assert ep.pricing.input == Decimal("0.20")
    assert ep.timeout.first_byte == 300 and ep.timeout.connect == 5  # endpoint overrides key by key
    assert ep.max_output_tokens == 16384
    # built-in catalogue merged: anthropic models are routable through the file's provider
    assert cfg.models["claude-sonnet-4-5"].endpoints[0].provider == "anthropic"


def test_no_config_uses_builtin_catalogue_and_env_keys() -> None:
    cfg = load_config(None, env={"MISTRAL_API_KEY": "k"})
    assert set(cfg.providers) == {"mistral"}
    assert cfg.models["ministral-14b-latest"].endpoints[0].pricing.output == Decimal("0.20")
    assert cfg.models["gpt-4o"].endpoints == ()  # listed, not routable without OPENAI_API_KEY
    prices = {
        m: (cfg.models[m].endpoints[0].pricing.input, cfg.models[m].endpoints[0].pricing.output)
        for m in (
            "ministral-8b-latest",
            "ministral-3b-latest",
            "codestral-latest",
            "devstral-medium-latest",
            "magistral-medium-latest",
            "magistral-small-latest",
        )
    }
    assert prices == {
        "ministral-8b-latest": (Decimal("0.15"), Decimal("0.15")),
        "ministral-3b-latest": (Decimal("0.10"), Decimal("0.10")),
        "codestral-latest": (Decimal("0.30"), Decimal("0.90")),
        "devstral-medium-latest": (Decimal("0.40"), Decimal("2.00")),
        "magistral-medium-latest": (Decimal("2.00"), Decimal("5.00")),
        "magistral-small-latest": (Decimal("0.50"), Decimal("1.50")),
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"providers": {"p": {"api": "grpc", "base_url": "http://x"}}}, "providers.p.api:"),
        ({"providers": {"p": {"api": "openai", "base_url": "ftp://x"}}}, "providers.p.base_url:"),
        (
            {
                "models": {
                    "m": {"endpoints": [{"provider": "nope", "model": "x", "pricing": {"input": 1, "output": 1}}]}
                }
            },
            "models.m.endpoints[0].provider: unknown provider 'nope'",
        ),
        (
            {
                "providers": {"p": {"api": "openai", "base_url": "http://x"}},
                "models": {
                    "m": {"endpoints": [{"provider": "p", "model": "x", "pricing": {"input": "abc", "output": 1}}]}
                },
            },
            "models.m.endpoints[0].pricing.input:",
        ),
        (
            {"providers": {"p": {"api": "openai", "base_url": "http://x", "timeout": {"connect": -1}}}},
            "providers.p.timeout.connect:",
        ),
        ({"databse": "sqlite:///x"}, "databse: unknown key"),
        ({"responses": {"retention_days": 0}}, "responses.retention_days:"),
        ({"responses": {"retention_days": "30"}}, "responses.retention_days:"),
        ({"responses": {"retain": 3}}, "responses.retain: unknown key"),
        ({"responses": 30}, "responses: must be a mapping"),
    ],
)
def test_bad_config_names_the_key_at_fault(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, env={})
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_file_model_wins_over_builtin() -> None:
    cfg = parse_config(
        {
            "providers": {"mistral": {"api": "openai", "base_url": "http://127.0.0.1:9/v1"}},
            "models": {
                "codestral-latest": {
                    "name": "Mine",
                    "endpoints": [
                        {"provider": "mistral", "model": "codestral-2501", "pricing": {"input": 9, "output": 9}}
                    ],
                }
            },
        },
        env={},
    )
    m = cfg.models["codestral-latest"]
    assert m.name == "Mine" and m.endpoints[0].model == "codestral-2501"


# ---- catalogue facts the pages show (issue 8) ---------------------------------------------------


def test_builtin_models_without_a_key_are_kept_as_unconfigured_endpoints() -> None:
    config = parse_config({}, env={})
    m = config.models["ministral-14b-latest"]
    assert m.endpoints == ()  # never routed to
    assert [e.provider for e in m.unconfigured] == ["mistral", "openrouter"]
    info = config.provider_info["mistral"]
    assert (info.enable_env, info.configured) == ("MISTRAL_API_KEY", False)


def test_a_key_in_the_environment_moves_the_endpoint_to_routable() -> None:
    config = parse_config({}, env={"MISTRAL_API_KEY": "k"})
    m = config.models["ministral-14b-latest"]
    # only the host whose key is set becomes routable; the model's other hosts stay listed
    assert [e.provider for e in m.endpoints] == ["mistral"]
    assert [e.provider for e in m.unconfigured] == ["openrouter"]
    assert config.provider_info["mistral"].configured


def test_a_config_file_provider_overrides_the_builtin_of_the_same_id() -> None:
    raw = {"providers": {"mistral": {"api": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}}}
    config = parse_config(raw, env={})
    assert config.models["ministral-14b-latest"].endpoints[0].provider == "mistral"
    info = config.provider_info["mistral"]
    assert info.configured and info.enable_env is None and info.base_url == "http://127.0.0.1:9/v1"
    assert info.name == "Mistral AI"  # the built-in display name is kept ...
    raw["providers"]["mistral"]["name"] = "Mistral (EU)"
    assert parse_config(raw, env={}).provider_info["mistral"].name == "Mistral (EU)"  # ... unless renamed


def test_price_source_and_date_and_release_date_are_parsed() -> None:
    raw = {
        "providers": {"p": {"api": "openai", "base_url": "http://127.0.0.1:9", "api_key": "k"}},
        "models": {
            "m": {
                "created": dt.date(2025, 8, 7),
                "endpoints": [
                    {
                        "provider": "p",
                        "model": "m",
                        "pricing": {"input": 1, "output": 2, "source": "https://x.example/p", "as_of": "2026-11-20"},
                    }
                ],
            }
        },
    }
    m = parse_config(raw, env={}).models["m"]
    assert m.created == 1754524800
    assert m.endpoints[0].pricing.source == "https://x.example/p"
    assert m.endpoints[0].pricing.as_of == dt.date(2026, 11, 20)


def test_site_identity_and_trusted_proxies() -> None:
    site = parse_config(
        {"site": {"name": "Acme Router", "public_url": "https://r.example/", "trusted_proxies": ["10.0.0.0/8", "::1"]}},
        env={},
    ).site
    assert (site.name, site.public_url) == ("Acme Router", "https://r.example")
    assert [str(n) for n in site.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert parse_config({}, env={}).site.public_url is None


@pytest.mark.parametrize(
    ("site", "fault"),
    [
        ({"nmae": "x"}, "site.nmae: unknown key"),
        ({"public_url": "router.example"}, "site.public_url: must be an http(s) URL"),
        ({"trusted_proxies": ["not-an-ip"]}, "site.trusted_proxies[0]: not an IP address"),
    ],
)
def test_bad_site_config_is_one_line_naming_the_key(site: dict[str, object], fault: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fault)):
        parse_config({"site": site}, env={})


# ---- provider kinds: api values and each kind's own keys come from keeprouter.kinds -------------

CLOUD = kinds.KindKeys(
    "cloudy",
    required=("region",),
    optional=("api_version", "aws_secret_access_key", "aws_session_token"),
    default_base_url="https://runtime.{region}.cloudy.test",
)


@pytest.fixture
def cloud_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kinds, "KINDS", (*kinds.KINDS, CLOUD))


def _provider_error(praw: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({"providers": {"p": praw}}, env={})
    assert "\n" not in str(info.value)
    return str(info.value)


def test_unknown_provider_key_is_named() -> None:
    message = _provider_error({"api": "openai", "base_url": "http://x", "regoin": "x"})
    assert message == "providers.p.regoin: unknown key"


def test_api_values_are_the_kinds() -> None:
    from keeprouter import kinds

    expected = f"providers.p.api: must be one of {', '.join(kinds.names())}, got None"
    assert _provider_error({"base_url": "http://x"}) == expected
    assert "openai, anthropic" in expected


@pytest.mark.usefixtures("cloud_kind")
def test_a_key_of_another_kind_says_whose_it_is() -> None:
    message = _provider_error({"api": "openai", "base_url": "http://x", "region": "eu"})
    assert message == "providers.p.region: unknown key for api openai (a key of bedrock, cloudy)"


@pytest.mark.usefixtures("cloud_kind")
def test_a_required_key_of_the_kind_must_be_present() -> None:
    assert _provider_error({"api": "cloudy", "api_key": "k"}) == "providers.p.region: required for api cloudy"
    assert _provider_error({"api": "cloudy", "region": ""}) == "providers.p.region: required for api cloudy"


@pytest.mark.usefixtures("cloud_kind")
def test_kind_keys_must_be_strings() -> None:
    assert _provider_error({"api": "cloudy", "region": ["a"]}) == "providers.p.region: must be a string"


@pytest.mark.usefixtures("cloud_kind")
def test_kind_options_defaults_and_yaml_dates() -> None:
    text = "providers:\n  p: {api: cloudy, region: eu-west-1, api_version: 2024-10-21, aws_session_token: ''}\n"
    cfg = parse_config(yaml.safe_load(text), env={})
    p = cfg.providers["p"]
    assert p.options == {"region": "eu-west-1", "api_version": "2024-10-21"}  # the empty token is absent
    assert p.base_url == "https://runtime.eu-west-1.cloudy.test"  # derived from the required key
    given = parse_config({"providers": {"p": {"api": "cloudy", "region": "x", "base_url": "http://h/"}}}, env={})
    assert given.providers["p"].base_url == "http://h"


def test_kind_keys_are_checked_when_declared() -> None:
    with pytest.raises(ValueError, match="common key"):
        kinds.KindKeys("k", optional=("headers",))
    with pytest.raises(ValueError, match="not a required key"):
        kinds.KindKeys("k", optional=("zone",), default_base_url="https://{zone}.test")


def test_stored_responses_retention_defaults_to_30_days() -> None:
    assert parse_config({}, env={}).responses_retention_days == 30.0
    assert parse_config({"responses": {"retention_days": 7}}, env={}).responses_retention_days == 7.0
    assert parse_config({"responses": {"retention_days": 0.5}}, env={}).responses_retention_days == 0.5


def test_cloud_providers_come_from_their_own_environment_variables() -> None:
    info = parse_config({}, env={}).provider_info
    assert (info["google"].api, info["bedrock"].api, info["azure"].api) == ("gemini", "bedrock", "azure")
    assert info["azure"].enable_env == "AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT"
    assert not any(info[p].configured for p in ("google", "bedrock", "azure"))

    gemini = parse_config({}, env={"GEMINI_API_KEY": "g"})
    assert gemini.providers["google"].api_key == "g"
    assert "google" in {e.provider for e in gemini.models["gemini-2.5-flash"].endpoints}

    # Azure needs its key AND its endpoint
    assert "azure" not in parse_config({}, env={"AZURE_OPENAI_API_KEY": "a"}).providers
    az = parse_config({}, env={"AZURE_OPENAI_API_KEY": "a", "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"})
    assert (az.providers["azure"].api_key, az.providers["azure"].base_url) == ("a", "https://r.openai.azure.com")

    # Bedrock: AWS credentials stay with AWS's own chain; the region comes from AWS_REGION
    aws = parse_config({}, env={"AWS_ACCESS_KEY_ID": "AKID", "AWS_REGION": "eu-west-1"})
    bd = aws.providers["bedrock"]
    assert bd.api_key is None and "AKID" not in repr(bd)
    assert bd.base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    sonnet = {e.provider: e.model for e in aws.models["claude-sonnet-4-5"].endpoints}
    assert sonnet == {"bedrock": "global.anthropic.claude-sonnet-4-5-20250929-v1:0"}
    key = parse_config({}, env={"AWS_BEARER_TOKEN_BEDROCK": "bk"}).providers["bedrock"]
    assert key.api_key == "bk" and key.base_url == "https://bedrock-runtime.us-east-1.amazonaws.com"
