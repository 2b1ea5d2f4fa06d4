"""Provider kinds (the `api:` of a provider) and the config keys each takes: data, imported by both sides.

Why here, below `config` and `providers`: the config file is validated when it is loaded, before
any adapter exists, and `config` must not import `providers` (dependencies point one way). So the
part of a kind that validation needs (its name and its keys) is plain data in this module, which
imports nothing of ours; `config` derives `api:` values and per-kind key checks from `KINDS`, and
each row of `providers.registry` (adapter, framing, token counting, capabilities) points at its
`KindKeys` here. A test checks that the registry has exactly one row per entry of `KINDS`.

A new kind is one `KindKeys` below plus its registry row (and its folder under `providers/`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Keys every provider takes, whatever its kind (`api_key_env` / `base_url_env`, `name` and `docs` are
# for the built-in catalogue's rows and the pages).
COMMON_KEYS = frozenset(
    {"api", "base_url", "api_key", "timeout", "headers", "api_key_env", "base_url_env", "name", "docs"}
)

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class KindKeys:
    """The config keys of one provider kind beyond `COMMON_KEYS`. Their values are strings (a YAML
    date such as `api_version: 2024-10-21` is read as its ISO text); an empty value counts as absent,
    so `${AWS_SESSION_TOKEN:-}` can stand for "none".

    `default_base_url` makes `base_url` optional; it may name required keys in braces, filled from
    the provider's own values (`https://bedrock-runtime.{region}.amazonaws.com`). None: the provider
    must give its base_url."""

    name: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    default_base_url: str | None = None

    def __post_init__(self) -> None:
        for key in (*self.required, *self.optional):
            if key in COMMON_KEYS:
                raise ValueError(f"kind {self.name}: {key} is a common key")
        if self.default_base_url is not None:
            for key in _PLACEHOLDER.findall(self.default_base_url):
                if key not in self.required:
                    raise ValueError(f"kind {self.name}: default_base_url names {key}, not a required key")

    def takes(self, key: str) -> bool:
        return key in COMMON_KEYS or key in self.required or key in self.optional

    def base_url_for(self, options: Mapping[str, str]) -> str | None:
        """The default base URL for a provider with these `options` (its required keys present)."""
        if self.default_base_url is None:
            return None
        return _PLACEHOLDER.sub(lambda m: options[m.group(1)], self.default_base_url)


OPENAI = KindKeys("openai")  # any OpenAI-compatible host (hosts differ by data rows of their own)
ANTHROPIC = KindKeys("anthropic")
# Azure OpenAI / AI Foundry: `api_version` picks the deployments API, absent the versionless v1 API.
AZURE = KindKeys("azure", optional=("api_version",))
# AWS Bedrock Runtime (Converse): SigV4 with these keys, or the standard AWS chain when they are
# absent, or a Bedrock API key (`api_key`); the region names the host and the signature's scope.
BEDROCK = KindKeys(
    "bedrock",
    required=("region",),
    optional=("aws_access_key_id", "aws_secret_access_key", "aws_session_token"),
    default_base_url="https://bedrock-runtime.{region}.amazonaws.com",
)
# Gemini's native API (Google AI Studio): one fixed host, so base_url is optional.
GEMINI = KindKeys("gemini", default_base_url="https://generativelanguage.googleapis.com")

KINDS: tuple[KindKeys, ...] = (OPENAI, ANTHROPIC, AZURE, BEDROCK, GEMINI)


def kind_named(name: object) -> KindKeys | None:
    return next((k for k in KINDS if k.name == name), None)


def names() -> tuple[str, ...]:
    return tuple(k.name for k in KINDS)
