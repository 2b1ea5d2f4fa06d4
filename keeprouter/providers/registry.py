"""One row per provider kind: everything the rest of KeepRouter may know about a kind, as data.

A row names the kind's config keys (`kinds.KindKeys`, which config validation reads: see `kinds`
for why that part sits below `config`), its adapter, the framing of its streams, whether its
upstream counts tokens, and which endpoint capabilities its wire format can carry. `build_adapter`
is the only place that turns a provider's `api:` into code; nothing outside `providers/` names a
kind. A new kind is a folder under `providers/`, its `KindKeys` in `kinds`, and one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from keeprouter import kinds
from keeprouter.config import ProviderConfig
from keeprouter.formats.canonical import ChatRequest
from keeprouter.providers.anthropic import AnthropicAdapter
from keeprouter.providers.anthropic import request as anthropic_request
from keeprouter.providers.azure import AzureAdapter
from keeprouter.providers.base import Adapter
from keeprouter.providers.bedrock import BedrockAdapter
from keeprouter.providers.bedrock import request as bedrock_request
from keeprouter.providers.bedrock.eventstream import EventStreamDecoder
from keeprouter.providers.framing import SSE, FramingFactory
from keeprouter.providers.gemini import GeminiAdapter
from keeprouter.providers.gemini import request as gemini_request
from keeprouter.providers.openai import OpenAIAdapter
from keeprouter.providers.openai import request as openai_request
from keeprouter.providers.transport import Transport
from keeprouter.providers.vertex import VertexAdapter
from keeprouter.providers.vertex.adapter import is_claude as vertex_is_claude

AdapterFactory = Callable[[ProviderConfig, Transport], Adapter]
# The request fields (the client's names) a kind's wire format cannot carry for this request to
# this upstream model; the gateway lists them in the X-KeepRouter-Dropped response header.
Drops = Callable[[ChatRequest, str], list[str]]


def _any_model(fields: Callable[[ChatRequest], list[str]]) -> Drops:
    """A kind whose body carries the same fields whatever the model."""
    return lambda req, model: fields(req)


def _vertex_drops(req: ChatRequest, model: str) -> list[str]:
    """Vertex sends each family in its publisher's body: Claude's Messages, else Gemini's."""
    if vertex_is_claude(model):
        return anthropic_request.dropped_fields(req)
    return gemini_request.dropped_fields(req)


# The endpoint capabilities (`config.KNOWN_CAPABILITIES`) a wire format can carry at all; an
# endpoint's own list says what its model does.
_CHAT = frozenset({"streaming", "tools", "vision", "reasoning", "response_format", "json_mode", "prompt_caching"})


@dataclass(frozen=True, slots=True)
class ProviderKind:
    keys: kinds.KindKeys
    adapter: AdapterFactory  # (provider, its transport) -> the adapter
    framing: FramingFactory  # how its streamed bodies are cut into (event type, payload) frames
    counts_tokens: bool  # the upstream has a token-count endpoint (else count_tokens raises CountNotSupported)
    capabilities: frozenset[str]
    drops: Drops

    @property
    def name(self) -> str:
        return self.keys.name


# Keyed by kind name, in the order of `kinds.KINDS` (a test holds them to it).
ROWS: Mapping[str, ProviderKind] = MappingProxyType(
    {
        row.name: row
        for row in (
            ProviderKind(
                kinds.OPENAI,
                OpenAIAdapter,
                SSE,
                counts_tokens=False,
                capabilities=_CHAT,
                drops=_any_model(openai_request.dropped_fields),
            ),
            # Structured output rides on a forced tool; prompt caching is explicit (cache_control).
            ProviderKind(
                kinds.ANTHROPIC,
                AnthropicAdapter,
                SSE,
                counts_tokens=True,
                capabilities=_CHAT,
                drops=_any_model(anthropic_request.dropped_fields),
            ),
            ProviderKind(
                kinds.AZURE,
                AzureAdapter,
                SSE,
                counts_tokens=False,
                capabilities=_CHAT,
                drops=_any_model(openai_request.dropped_fields),  # the OpenAI body at Azure's URLs
            ),
            # Converse for every model; CountTokens answers for Claude models (others: CountNotSupported).
            ProviderKind(
                kinds.BEDROCK,
                BedrockAdapter,
                EventStreamDecoder,
                counts_tokens=True,
                capabilities=_CHAT,
                drops=bedrock_request.dropped_fields,
            ),
            # Structured output is responseJsonSchema; prompt caching is implicit (cachedContentTokenCount).
            ProviderKind(
                kinds.GEMINI,
                GeminiAdapter,
                SSE,
                counts_tokens=True,
                capabilities=_CHAT,
                drops=_any_model(gemini_request.dropped_fields),
            ),
            # Gemini models as `gemini`, Claude models as `anthropic`; both families count tokens.
            ProviderKind(kinds.VERTEX, VertexAdapter, SSE, counts_tokens=True, capabilities=_CHAT, drops=_vertex_drops),
        )
    }
)


def kind_of(provider: ProviderConfig) -> ProviderKind:
    """The row of `provider`'s kind. Config validation admits only kinds in `kinds.KINDS`, and a
    test holds the rows to exactly those, so a miss here is a programming error."""
    return ROWS[provider.api]


def dropped_fields(kind: str, req: ChatRequest, model: str) -> list[str]:
    """What an endpoint of `kind` serving `model` cannot honour of `req` (an unknown kind: nothing known)."""
    row = ROWS.get(kind)
    return row.drops(req, model) if row is not None else []


def build_adapter(provider: ProviderConfig, transport: Transport | None = None) -> Adapter:
    """The adapter for `provider`, over `transport` (tests pass a fake) or a new one that frames
    streams as the kind's row says."""
    row = kind_of(provider)
    return row.adapter(provider, transport or Transport(provider, framing=row.framing))
