"""The upstream side: one adapter per provider kind, picked by its row in `registry`. Hosts that share
a kind differ only by config (base_url, headers) and by data rows of their own."""

from __future__ import annotations

from keeprouter.providers.base import Adapter, CountNotSupported
from keeprouter.providers.registry import ROWS, ProviderKind, build_adapter, kind_of

__all__ = ["ROWS", "Adapter", "CountNotSupported", "ProviderKind", "build_adapter", "kind_of"]
