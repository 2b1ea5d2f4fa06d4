"""The built-in catalogue (`models.yaml`, shipped in the package): providers and models as data."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def _data() -> dict[str, Any]:
    text = resources.files("keeprouter.catalogue").joinpath("models.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def builtin_providers() -> dict[str, dict[str, Any]]:
    """Provider rows; each names the environment variable that holds its key (`api_key_env`)."""
    return dict(_data()["providers"])


def builtin_models() -> dict[str, dict[str, Any]]:
    return dict(_data()["models"])


def from_environment(row: Mapping[str, Any], env: Mapping[str, str]) -> tuple[dict[str, Any], bool, str | None]:
    """A built-in provider row as the environment completes it: (its config, whether it is live,
    what to set to make it live).

    `api_key_env` / `base_url_env` fill `api_key` / `base_url`, and the provider is live when every
    variable they name is set (Azure needs its key and its endpoint). `env: {key: VARIABLE}` fills any
    other key (Bedrock's `region` from AWS_REGION). `enabled_by_env: [VARIABLE, ...]` makes it live
    when any of those is set instead: for kinds that find their own credentials (AWS's chain reads
    AWS_ACCESS_KEY_ID, AWS_PROFILE... itself, so no secret passes through the config).
    `requires_env: [VARIABLE, ...]` makes it live when all of those are set (Vertex: a service
    account's key file and the project it bills)."""
    out = {k: v for k, v in row.items() if k not in ("env", "enabled_by_env", "requires_env")}
    named = {"api_key": row.get("api_key_env"), "base_url": row.get("base_url_env"), **(row.get("env") or {})}
    for key, var in named.items():
        if var and env.get(var):
            out[key] = env[var]
    needed = [v for v in (row.get("api_key_env"), row.get("base_url_env")) if v]
    all_of = list(row.get("requires_env") or ())
    if all_of:
        return out, all(env.get(v) for v in all_of), " and ".join(all_of)
    any_of = list(row.get("enabled_by_env") or ())
    if any_of:
        return out, any(env.get(v) for v in any_of), " or ".join(any_of)
    return out, bool(needed) and all(env.get(v) for v in needed), " and ".join(needed) or None
