"""The config file: exact contract shape, ${ENV} interpolation, built-in merge, one-line errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

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
    prices = {m: (cfg.models[m].endpoints[0].pricing.input, cfg.models[m].endpoints[0].pricing.output)
              for m in ("ministral-8b-latest", "ministral-3b-latest", "codestral-latest",
                        "devstral-medium-latest", "magistral-medium-latest", "magistral-small-latest")}
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
        ({"models": {"m": {"endpoints": [{"provider": "nope", "model": "x", "pricing": {"input": 1, "output": 1}}]}}},
         "models.m.endpoints[0].provider: unknown provider 'nope'"),
        ({"providers": {"p": {"api": "openai", "base_url": "http://x"}},
          "models": {"m": {"endpoints": [{"provider": "p", "model": "x", "pricing": {"input": "abc", "output": 1}}]}}},
         "models.m.endpoints[0].pricing.input:"),
        ({"providers": {"p": {"api": "openai", "base_url": "http://x", "timeout": {"connect": -1}}}},
         "providers.p.timeout.connect:"),
        ({"databse": "sqlite:///x"}, "databse: unknown key"),
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
            "models": {"codestral-latest": {"name": "Mine", "endpoints": [
                {"provider": "mistral", "model": "codestral-2501", "pricing": {"input": 9, "output": 9}}]}},
        },
        env={},
    )
    m = cfg.models["codestral-latest"]
    assert m.name == "Mine" and m.endpoints[0].model == "codestral-2501"
