"""The response cache's config: `response_cache: {ttl, max_entries}` at the top level (every model)
and `response_cache: {ttl}` on a model (that model only, or `ttl: 0` to keep it out)."""

from __future__ import annotations

from typing import Any

from keeprouter.config.schema import ResponseCacheConfig
from keeprouter.config.values import ConfigError, mapping

MAX_TTL = 30 * 86_400.0  # a month: an answer kept longer is an archive, not a cache
MAX_ENTRIES = 10_000_000


def response_cache(raw: Any, any_model: bool) -> ResponseCacheConfig | None:
    """The top-level section; None (the cache off) when it is absent and no model set its own
    (`any_model`), so the request path has nothing to check."""
    if raw is None:
        return ResponseCacheConfig(ttl=None) if any_model else None
    section = mapping(raw, "response_cache")
    for k in section:
        if k not in ("ttl", "max_entries"):
            raise ConfigError(f"response_cache.{k}: unknown key (expected ttl, max_entries)")
    ttl = ttl_of(section.get("ttl", 300), "response_cache.ttl", zero=False)
    entries = section.get("max_entries", 10_000)
    if isinstance(entries, bool) or not isinstance(entries, int) or not 1 <= entries <= MAX_ENTRIES:
        raise ConfigError(f"response_cache.max_entries: must be a whole number from 1 to {MAX_ENTRIES}")
    return ResponseCacheConfig(ttl=ttl, max_entries=entries)


def model_ttl(raw: Any, where: str) -> float | None:
    """A model's own `response_cache: {ttl}`; None when it has none."""
    if raw is None:
        return None
    section = mapping(raw, where)
    for k in section:
        if k != "ttl":
            raise ConfigError(f"{where}.{k}: unknown key (expected ttl)")
    if "ttl" not in section:
        raise ConfigError(f"{where}.ttl: required (seconds; 0 keeps this model out of the cache)")
    return ttl_of(section["ttl"], f"{where}.ttl", zero=True)


def ttl_of(v: Any, where: str, *, zero: bool) -> float:
    low = 0 if zero else 1
    if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v <= MAX_TTL:
        raise ConfigError(f"{where}: must be a number of seconds from {low} to {int(MAX_TTL)}")
    return float(v)
