"""The response cache's config keys: `response_cache: {ttl, max_entries}` at the top level and a
model's own `response_cache: {ttl}`; their defaults and the one-line errors."""

from __future__ import annotations

import re

import pytest
import yaml

from keeprouter.config import ConfigError, parse_config

_ONE_MODEL = {
    "providers": {"p": {"api": "openai", "base_url": "http://127.0.0.1:1", "api_key": "k"}},
    "models": {"m": {"endpoints": [{"provider": "p", "model": "up", "pricing": {"input": 1, "output": 1}}]}},
}


def test_the_response_cache_is_off_by_default() -> None:
    cfg = parse_config(dict(_ONE_MODEL), env={})
    assert cfg.response_cache is None and cfg.models["m"].response_cache_ttl is None


def test_the_response_cache_global_and_per_model() -> None:
    cfg = parse_config({**_ONE_MODEL, "response_cache": {}}, env={})
    assert cfg.response_cache is not None
    assert (cfg.response_cache.ttl, cfg.response_cache.max_entries) == (300.0, 10_000)
    cfg = parse_config({**_ONE_MODEL, "response_cache": {"ttl": 60, "max_entries": 5}}, env={})
    assert cfg.response_cache is not None and (cfg.response_cache.ttl, cfg.response_cache.max_entries) == (60.0, 5)
    models = yaml.safe_load(yaml.safe_dump(_ONE_MODEL["models"]))
    models["m"]["response_cache"] = {"ttl": 30}
    cfg = parse_config({**_ONE_MODEL, "models": models}, env={})
    # a model's own TTL turns the cache on for that model only (no global TTL)
    assert cfg.models["m"].response_cache_ttl == 30.0
    assert cfg.response_cache is not None and cfg.response_cache.ttl is None


@pytest.mark.parametrize(
    ("section", "where", "message"),
    [
        ({"ttl": 0}, "top", "response_cache.ttl: must be a number of seconds from 1"),
        ({"ttl": "5m"}, "top", "response_cache.ttl: must be a number of seconds"),
        ({"max_entries": 0}, "top", "response_cache.max_entries: must be a whole number"),
        ({"size": 1}, "top", "response_cache.size: unknown key"),
        ({"ttl": -1}, "model", "models.m.response_cache.ttl: must be a number of seconds from 0"),
        ({}, "model", "models.m.response_cache.ttl: required"),
        ({"max_entries": 3}, "model", "models.m.response_cache.max_entries: unknown key"),
    ],
)
def test_a_bad_response_cache_is_one_line_naming_the_key(section: dict[str, object], where: str, message: str) -> None:
    raw = yaml.safe_load(yaml.safe_dump(_ONE_MODEL))
    if where == "top":
        raw["response_cache"] = section
    else:
        raw["models"]["m"]["response_cache"] = section
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        parse_config(raw, env={})
