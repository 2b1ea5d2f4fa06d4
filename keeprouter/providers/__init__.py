"""Upstream adapters, one per wire format. `build_adapter` is the only place that maps a format
name to its adapter class; hosts that share a format differ only by config (base_url, headers)."""

from __future__ import annotations

from keeprouter.config import ProviderConfig
from keeprouter.providers.anthropic import AnthropicAdapter
from keeprouter.providers.azure import AzureAdapter
from keeprouter.providers.base import Adapter
from keeprouter.providers.openai import OpenAIAdapter

_ADAPTERS: dict[str, type[OpenAIAdapter] | type[AnthropicAdapter] | type[AzureAdapter]] = {
    "openai": OpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "azure": AzureAdapter,  # registry row
}


def build_adapter(provider: ProviderConfig) -> Adapter:
    return _ADAPTERS[provider.api](provider)


__all__ = ["Adapter", "build_adapter"]
