"""What every page shares: the site's identity and base URL, links, and a model's catalogue facts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from keeprouter.config import Config, EndpointConfig, ModelConfig, ProviderInfo

CAPABILITY_LABELS = {
    "streaming": "Streaming",
    "tools": "Tool / function calling",
    "vision": "Image input",
    "reasoning": "Reasoning",
    "response_format": "Structured outputs (JSON schema)",
    "json_mode": "JSON mode",
    "prompt_caching": "Prompt caching",
}
# Every model answers on every client API, whatever its upstream speaks.
CLIENT_APIS = ("OpenAI-compatible", "Anthropic-compatible")
KEY_ENV = "KEEPROUTER_API_KEY"  # the variable the code samples read the key from


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    base_url: str  # no trailing slash
    today: dt.date

    def md(self, path: str) -> str:
        """The absolute URL of a page's Markdown form, as tools that read Markdown want it."""
        return f"{self.base_url}{'/index' if path == '/' else path}.md"


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    href: str  # the HTML page's path
    md: str  # the Markdown twin's absolute URL
    note: str = ""


def link(site: Site, title: str, path: str, note: str = "") -> Link:
    """A link to one of our pages; `path` may end in a #fragment, kept on both forms."""
    page, hash_, fragment = path.partition("#")
    return Link(title, path, site.md(page) + hash_ + fragment, note)


@dataclass(frozen=True, slots=True)
class Listed:
    """One endpoint of a model as the pages show it, routable here or not."""

    endpoint: EndpointConfig
    provider: ProviderInfo
    configured: bool


def listed_endpoints(config: Config, model: ModelConfig) -> list[Listed]:
    """Routable endpoints first (in config order), then the built-in ones without a key here."""
    out = []
    for ep, configured in [(e, True) for e in model.endpoints] + [(e, False) for e in model.unconfigured]:
        info = config.provider_info.get(ep.provider) or ProviderInfo(ep.provider, ep.provider, "openai", "")
        out.append(Listed(ep, info, configured))
    return out


def capabilities(model: ModelConfig) -> list[str]:
    """Capability labels true to the model: offered by at least one of its endpoints."""
    caps: set[str] = set()
    for ep in (*model.endpoints, *model.unconfigured):
        caps |= ep.capabilities
    return [label for cap, label in CAPABILITY_LABELS.items() if cap in caps]


def unavailable_note(config: Config, model: ModelConfig) -> str:
    """Why a model cannot be called here and which variable would fix it; "" when it can."""
    if model.endpoints:
        return ""
    envs = []
    for ep in model.unconfigured:
        env = config.provider_info[ep.provider].enable_env if ep.provider in config.provider_info else None
        if env and env not in envs:
            envs.append(env)
    if not envs:
        return "not available on this server: no provider is configured for it"
    return "not available on this server: set " + " or ".join(envs)


def modality(model: ModelConfig) -> str:
    return " + ".join(model.input_modalities) + " → " + model.modality.partition("->")[2]


def prices_as_of(models: list[ModelConfig], fallback: dt.date) -> str:
    """The newest as-of date among the prices shown (the catalogue's own dates), else `fallback`."""
    dates = [ep.pricing.as_of for m in models for ep in (*m.endpoints, *m.unconfigured) if ep.pricing.as_of]
    return max(dates, default=fallback).isoformat()
