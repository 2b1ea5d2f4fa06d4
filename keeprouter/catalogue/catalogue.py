"""The built-in catalogue (`models.yaml`, shipped in the package): providers and models as data."""

from __future__ import annotations

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
