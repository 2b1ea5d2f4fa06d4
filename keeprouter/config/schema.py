"""The config's typed objects: what a validated config file becomes (plain frozen dataclasses)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from keeprouter.auth.settings import OidcConfig
from keeprouter.config.values import ConfigError
from keeprouter.config.values import mapping as _mapping
from keeprouter.config.values import positive as _positive


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 300.0  # reasoning models may think for minutes before the first token
    idle: float = 120.0

    def merged(self, raw: dict[str, Any] | None, where: str) -> Timeouts:
        if not raw:
            return self
        values = {"connect": self.connect, "first_byte": self.first_byte, "idle": self.idle}
        for k, v in _mapping(raw, where).items():
            if k not in values:
                raise ConfigError(f"{where}.{k}: unknown timeout (use connect, first_byte, idle)")
            values[k] = _positive(v, f"{where}.{k}")
        return Timeouts(**values)


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Prices that apply once the prompt has at least `min_prompt_tokens` tokens."""

    min_prompt_tokens: int
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD per 1M tokens. Cached tokens fall back to `input` when their own price is absent; a
    1-hour cache write falls back to `cache_write` (the 5-minute write price)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None  # defaults to `output`
    request: Decimal | None = None  # USD per request (a rerank search), on top of the tokens
    tiers: tuple[PriceTier, ...] = ()
    source: str | None = None  # where the price is published (a URL, or "local")
    as_of: dt.date | None = None  # when it was read there


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    id: str
    api: str  # the provider kind (`kinds.KINDS`)
    base_url: str
    api_key: str | None
    timeout: Timeouts = field(default_factory=Timeouts)
    headers: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)  # the kind's own keys (region, project, ...)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What the pages say about a provider, configured here or not: its display name, wire format,
    and the environment variable that would enable it (None for one the config file defines)."""

    id: str
    name: str
    api: str
    base_url: str
    enable_env: str | None = None  # e.g. MISTRAL_API_KEY; OLLAMA_BASE_URL for a local host
    docs: str | None = None
    configured: bool = False


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """How the pages present this server (`site:`), and whose X-Forwarded-* headers to believe."""

    name: str = "KeepRouter"
    public_url: str | None = None  # base URL in code samples; else the request's own
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    provider: str
    model: str
    pricing: Pricing
    capabilities: frozenset[str]
    context_length: int
    max_output_tokens: int | None
    timeout: Timeouts
    auto_breakpoint: bool = False  # its model's `cache: {auto_breakpoint}`, for the request builder


@dataclass(frozen=True, slots=True)
class ModelConfig:
    id: str
    name: str
    maker: str
    context_length: int
    endpoints: tuple[EndpointConfig, ...]
    description: str = ""
    created: int = 0
    input_modalities: tuple[str, ...] = ("text",)
    modality: str = "text->text"  # one of MODALITIES
    dimensions: int | None = None  # an embedding model's default vector length (`dimensions:`)
    # Built-in endpoints whose provider is not configured here: shown on the pages, never routed to.
    unconfigured: tuple[EndpointConfig, ...] = ()
    # `cache: {auto_breakpoint: true}`: a request with no cache breakpoint of its own gets one on its
    # last cacheable block, for upstreams that cache only at explicit breakpoints.
    auto_breakpoint: bool = False
    # `response_cache: {ttl: N}`: this model's answers are kept N seconds for identical requests
    # (0: never, even when the global cache is on); None: the global `response_cache` decides.
    response_cache_ttl: float | None = None


@dataclass(frozen=True, slots=True)
class ResponseCacheConfig:
    """`response_cache:` (off when absent): identical requests of one owner answered from the cache."""

    ttl: float | None = 300.0  # seconds an answer is kept; None: only the models that set their own
    max_entries: int = 10_000  # answers kept at most; the soonest to expire are evicted first


@dataclass(frozen=True, slots=True)
class Config:
    database: str = "sqlite:///keeprouter.db"
    redis: str | None = None
    admin_key: str | None = None
    # `metrics_token`: opens GET /metrics only (observe.metrics); kept out of reprs, as every secret
    metrics_token: str | None = field(default=None, repr=False)
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    site: SiteConfig = field(default_factory=SiteConfig)
    provider_info: dict[str, ProviderInfo] = field(default_factory=dict)  # configured or not
    oidc: OidcConfig | None = None  # `auth: {oidc: ...}`: sign-in with an OpenID Connect provider
    responses_retention_days: float = 30.0  # `responses: {retention_days}`: stored responses' lifetime
    # The response cache: None when neither `response_cache:` nor any model's own is configured.
    response_cache: ResponseCacheConfig | None = None

    def endpoint_provider(self, ep: EndpointConfig) -> ProviderConfig:
        return self.providers[ep.provider]
