"""The config file (YAML, `${ENV}` interpolated), validated once at start-up into plain typed objects.

A bad config raises ConfigError whose message is one line naming the key at fault, e.g.
`models.ministral-14b-latest.endpoints[0].provider: unknown provider 'mistrall'`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from pathlib import Path
from typing import Any

import yaml

from keeprouter import kinds
from keeprouter.auth.settings import AuthConfigError, OidcConfig, parse_auth
from keeprouter.catalogue import catalogue as builtin
from keeprouter.config import caching
from keeprouter.config.schema import (
    Config,
    EndpointConfig,
    ModelConfig,
    PriceTier,
    Pricing,
    ProviderConfig,
    ProviderInfo,
    ResponseCacheConfig,
    SiteConfig,
    Timeouts,
)
from keeprouter.config.values import ConfigError
from keeprouter.config.values import date_opt as _date_opt
from keeprouter.config.values import int_opt as _int
from keeprouter.config.values import mapping as _mapping
from keeprouter.config.values import metrics_token as _metrics_token
from keeprouter.config.values import money as _money
from keeprouter.config.values import money_opt as _money_opt
from keeprouter.config.values import str_opt as _str_opt

__all__ = [
    "KNOWN_CAPABILITIES",
    "Config",
    "ConfigError",
    "EndpointConfig",
    "ModelConfig",
    "PriceTier",
    "Pricing",
    "ProviderConfig",
    "ProviderInfo",
    "ResponseCacheConfig",
    "SiteConfig",
    "Timeouts",
    "load_config",
    "parse_config",
]

KNOWN_CAPABILITIES = frozenset(
    {"streaming", "tools", "vision", "reasoning", "response_format", "json_mode", "prompt_caching"}
)
# What a model does (`modality`): chat, embeddings or rerank. Each is served on its own endpoints
# (/v1/chat/completions..., /v1/embeddings, /v1/rerank) and refused on the others.
MODALITIES = ("text->text", "text->embedding", "text->rerank")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# ---- loading ----------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str] | None, env: dict[str, str] | None = None) -> Config:
    """Read the file at `path` (or none: built-ins only), merge the built-in catalogue, validate."""
    env = dict(os.environ) if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"config: cannot read {p}: {e.strerror}") from None
        try:
            loaded = yaml.safe_load(_interpolate(text, env))
        except yaml.YAMLError as e:
            raise ConfigError(f"config: {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is not None:
            raw = _mapping(loaded, "config")
    return parse_config(raw, env)


def parse_config(raw: dict[str, Any], env: dict[str, str]) -> Config:
    known = {"database", "redis", "admin_key", "metrics_token", "providers", "models", "site", "auth", "responses",
             "response_cache"}  # fmt: skip
    for k in raw:
        if k not in known:
            raise ConfigError(f"{k}: unknown key (expected one of {', '.join(sorted(known))})")
    providers: dict[str, ProviderConfig] = {}
    info: dict[str, ProviderInfo] = {}
    # Built-in providers exist only when their API key (or, for a local host, its base URL) is in
    # the environment; the others are still known, so the pages can say what would enable them.
    offline: dict[str, ProviderConfig] = {}
    for pid, praw in builtin.builtin_providers().items():
        where = f"providers.{pid}"
        row, enabled, enable_env = builtin.from_environment(praw, env)
        p = _provider(pid, row, where)
        (providers if enabled else offline)[pid] = p
        info[pid] = ProviderInfo(
            pid, str(praw.get("name") or pid), p.api, p.base_url, enable_env, praw.get("docs"), enabled
        )
    for pid, praw in _mapping(raw.get("providers") or {}, "providers").items():
        p = providers[str(pid)] = _provider(str(pid), _mapping(praw, f"providers.{pid}"), f"providers.{pid}")
        offline.pop(p.id, None)
        seen = info.get(p.id)
        name = str(praw.get("name") or (seen.name if seen else p.id))
        docs = praw.get("docs") or (seen.docs if seen else None)
        info[p.id] = ProviderInfo(p.id, name, p.api, p.base_url, None, docs, True)

    models_raw: dict[str, Any] = dict(builtin.builtin_models())
    user_models = _mapping(raw.get("models") or {}, "models")
    models_raw.update(user_models)
    models: dict[str, ModelConfig] = {}
    for mid, mraw in models_raw.items():
        where = f"models.{mid}"
        is_user = mid in user_models
        m = _model(str(mid), _mapping(mraw, where), providers, offline, where, strict=is_user)
        models[m.id] = m

    admin = raw.get("admin_key")
    if admin is not None and not isinstance(admin, str):
        raise ConfigError("admin_key: must be a string")
    metrics_token = _metrics_token(raw.get("metrics_token"), admin)
    redis_url = raw.get("redis")
    if redis_url is not None and not (isinstance(redis_url, str) and redis_url.startswith("redis")):
        raise ConfigError("redis: must be a redis:// URL")
    database = raw.get("database", "sqlite:///keeprouter.db")
    if not isinstance(database, str) or not database.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise ConfigError("database: must be sqlite:///PATH or postgresql://...")
    return Config(
        database=database,
        redis=redis_url or None,
        admin_key=admin or None,  # KEEPROUTER_ADMIN_KEY is a setting (keeprouter.settings)
        metrics_token=metrics_token,
        providers=providers,
        models=models,
        site=_site(raw.get("site"), "site"),
        provider_info=info,
        oidc=_auth(raw.get("auth")),
        responses_retention_days=_retention(raw.get("responses")),
        response_cache=caching.response_cache(
            raw.get("response_cache"), any(m.response_cache_ttl for m in models.values())
        ),
    )


def _auth(raw: Any) -> OidcConfig | None:
    try:
        return parse_auth(raw)
    except AuthConfigError as e:
        raise ConfigError(str(e)) from None


def _retention(raw: Any) -> float:
    """`responses: {retention_days: N}`: how long a stored Responses API response is kept."""
    section = _mapping(raw or {}, "responses")
    for k in section:
        if k != "retention_days":
            raise ConfigError(f"responses.{k}: unknown key (expected retention_days)")
    days = section.get("retention_days", 30)
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days < 100_000:
        raise ConfigError("responses.retention_days: must be a positive number of days")
    return float(days)


def _site(raw: Any, where: str) -> SiteConfig:
    if raw is None:
        return SiteConfig()
    s = _mapping(raw, where)
    for k in s:
        if k not in {"name", "public_url", "trusted_proxies"}:
            raise ConfigError(f"{where}.{k}: unknown key (expected name, public_url, trusted_proxies)")
    name = s.get("name", "KeepRouter")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name: must be a non-empty string")
    url = s.get("public_url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise ConfigError(f"{where}.public_url: must be an http(s) URL")
    proxies = s.get("trusted_proxies") or []
    if not isinstance(proxies, list):
        raise ConfigError(f"{where}.trusted_proxies: must be a list of addresses or networks")
    nets = []
    for i, p in enumerate(proxies):
        try:
            nets.append(ipaddress.ip_network(str(p), strict=False))
        except ValueError:
            raise ConfigError(f"{where}.trusted_proxies[{i}]: not an IP address or network: {p!r}") from None
    return SiteConfig(name.strip(), url.rstrip("/") if url else None, tuple(nets))


def _interpolate(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        return env.get(m.group(1), m.group(2) if m.group(2) is not None else "")

    return _ENV_RE.sub(sub, text)


def _provider(pid: str, raw: dict[str, Any], where: str) -> ProviderConfig:
    api = raw.get("api")
    kind = kinds.kind_named(api)
    if kind is None:
        raise ConfigError(f"{where}.api: must be one of {', '.join(kinds.names())}, got {api!r}")
    options = _kind_options(kind, raw, where)
    base_url = raw.get("base_url") or kind.base_url_for(options)
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.base_url: must be an http(s) URL")
    headers = _mapping(raw.get("headers") or {}, f"{where}.headers")
    key = raw.get("api_key")
    return ProviderConfig(
        id=pid,
        api=kind.name,
        base_url=base_url.rstrip("/"),
        api_key=str(key) if key else None,
        timeout=Timeouts().merged(raw.get("timeout"), f"{where}.timeout"),
        headers={str(k): str(v) for k, v in headers.items()},
        options=options,
    )


def _kind_options(kind: kinds.KindKeys, raw: dict[str, Any], where: str) -> dict[str, str]:
    """The provider's keys beyond the common ones, checked against its kind's."""
    options: dict[str, str] = {}
    for k, v in raw.items():
        if not kind.takes(k):
            others = [o.name for o in kinds.KINDS if o.takes(k)]
            hint = f" for api {kind.name} (a key of {', '.join(others)})" if others else ""
            raise ConfigError(f"{where}.{k}: unknown key{hint}")
        if k in kinds.COMMON_KEYS or v is None or v == "":
            continue
        if isinstance(v, dt.date):
            v = v.isoformat()  # YAML reads `api_version: 2024-10-21` as a date
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ConfigError(f"{where}.{k}: must be a string")
        options[str(k)] = str(v)
    for k in kind.required:
        if k not in options:
            raise ConfigError(f"{where}.{k}: required for api {kind.name}")
    return options


def _model(
    mid: str,
    raw: dict[str, Any],
    providers: dict[str, ProviderConfig],
    offline: dict[str, ProviderConfig],
    where: str,
    strict: bool,
) -> ModelConfig:
    allowed = {"name", "maker", "context_length", "endpoints", "description", "created", "input_modalities", "cache",
               "modality", "dimensions", "response_cache"}  # fmt: skip
    for k in raw:
        if k not in allowed:
            raise ConfigError(f"{where}.{k}: unknown key")
    modality = raw.get("modality", "text->text")
    if modality not in MODALITIES:
        raise ConfigError(f"{where}.modality: must be one of {', '.join(MODALITIES)}, got {modality!r}")
    ctx = _int(raw.get("context_length", 0), f"{where}.context_length") or 0
    dimensions = _dimensions(raw.get("dimensions"), modality, f"{where}.dimensions")
    auto = _cache(raw.get("cache"), f"{where}.cache")
    eps_raw = raw.get("endpoints")
    if not isinstance(eps_raw, list) or not eps_raw:
        raise ConfigError(f"{where}.endpoints: must be a non-empty list")
    endpoints, unconfigured = [], []
    for i, eraw in enumerate(eps_raw):
        ewhere = f"{where}.endpoints[{i}]"
        e = _mapping(eraw, ewhere)
        pid = e.get("provider")
        if pid in providers:
            endpoints.append(_endpoint(e, providers[str(pid)], ctx, ewhere, auto, modality))
        elif pid in offline and not strict:  # a built-in endpoint whose provider has no key here
            unconfigured.append(_endpoint(e, offline[str(pid)], ctx, ewhere, auto, modality))
        else:
            raise ConfigError(f"{ewhere}.provider: unknown provider {pid!r}")
    return ModelConfig(
        id=mid,
        name=str(raw.get("name") or mid),
        maker=str(raw.get("maker") or ""),
        context_length=ctx or max((e.context_length for e in (*endpoints, *unconfigured)), default=0),
        endpoints=tuple(endpoints),
        description=str(raw.get("description") or ""),
        created=_created(raw.get("created"), f"{where}.created"),
        input_modalities=tuple(raw.get("input_modalities") or ("text",)),
        modality=modality,
        dimensions=dimensions,
        unconfigured=tuple(unconfigured),
        auto_breakpoint=auto,
        response_cache_ttl=caching.model_ttl(raw.get("response_cache"), f"{where}.response_cache"),
    )


def _dimensions(v: Any, modality: str, where: str) -> int | None:
    """An embedding model's default vector length, as the pages show it (a request's own
    `dimensions` still asks the upstream for fewer)."""
    if v is None:
        return None
    if modality != "text->embedding":
        raise ConfigError(f"{where}: only for text->embedding models")
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ConfigError(f"{where}: must be a positive integer")
    return v


def _cache(raw: Any, where: str) -> bool:
    """A model's `cache:` block; today one key, `auto_breakpoint` (a boolean)."""
    if raw is None:
        return False
    c = _mapping(raw, where)
    for k in c:
        if k != "auto_breakpoint":
            raise ConfigError(f"{where}.{k}: unknown key (expected auto_breakpoint)")
    auto = c.get("auto_breakpoint", False)
    if not isinstance(auto, bool):
        raise ConfigError(f"{where}.auto_breakpoint: must be true or false")
    return auto


def _created(v: Any, where: str) -> int:
    """Epoch seconds, or a release date (YAML `2025-08-07`) taken as midnight UTC."""
    if isinstance(v, dt.date):
        return int(dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC).timestamp())
    return _int(v, where) or 0


def _endpoint(
    e: dict[str, Any],
    provider: ProviderConfig,
    model_ctx: int,
    where: str,
    auto_breakpoint: bool = False,
    modality: str = "text->text",
) -> EndpointConfig:
    allowed = {"provider", "model", "pricing", "capabilities", "context_length", "max_output_tokens", "timeout"}
    for k in e:
        if k not in allowed:
            raise ConfigError(f"{where}.{k}: unknown key")
    upstream_model = e.get("model")
    if not isinstance(upstream_model, str) or not upstream_model:
        raise ConfigError(f"{where}.model: required (the upstream's model name)")
    caps = e.get("capabilities", ["streaming"])
    if not isinstance(caps, list):
        raise ConfigError(f"{where}.capabilities: must be a list")
    for c in caps:
        if c not in KNOWN_CAPABILITIES:
            raise ConfigError(f"{where}.capabilities: unknown capability {c!r}")
    return EndpointConfig(
        provider=provider.id,
        model=upstream_model,
        pricing=_pricing(e.get("pricing"), f"{where}.pricing", produces_text=modality == "text->text"),
        capabilities=frozenset(caps),
        context_length=_int(e.get("context_length"), f"{where}.context_length") or model_ctx,
        max_output_tokens=_int(e.get("max_output_tokens"), f"{where}.max_output_tokens"),
        timeout=provider.timeout.merged(e.get("timeout"), f"{where}.timeout"),
        auto_breakpoint=auto_breakpoint,
    )


_PRICE_KEYS = frozenset(
    {"input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning", "request", "tiers", "source",
     "as_of"}
)  # fmt: skip


def _pricing(raw: Any, where: str, *, produces_text: bool = True) -> Pricing:
    """An endpoint's prices. Embedding and rerank models produce no tokens: `output` is optional
    (0) for them."""
    p = _mapping(raw, where)
    for k in p:
        if k not in _PRICE_KEYS:
            raise ConfigError(f"{where}.{k}: unknown key")
    if "input" not in p or ("output" not in p and produces_text):
        raise ConfigError(f"{where}: needs input and output (USD per 1M tokens)")
    tiers = []
    for i, t in enumerate(p.get("tiers") or []):
        tw = f"{where}.tiers[{i}]"
        tm = _mapping(t, tw)
        tiers.append(
            PriceTier(
                min_prompt_tokens=_int(tm.get("min_prompt_tokens"), f"{tw}.min_prompt_tokens") or 0,
                input=_money(tm.get("input"), f"{tw}.input"),
                output=_money(tm.get("output"), f"{tw}.output"),
                cache_read=_money_opt(tm.get("cache_read"), f"{tw}.cache_read"),
                cache_write=_money_opt(tm.get("cache_write"), f"{tw}.cache_write"),
                cache_write_1h=_money_opt(tm.get("cache_write_1h"), f"{tw}.cache_write_1h"),
            )
        )
    return Pricing(
        input=_money(p["input"], f"{where}.input"),
        output=_money(p.get("output", 0), f"{where}.output"),
        cache_read=_money_opt(p.get("cache_read"), f"{where}.cache_read"),
        cache_write=_money_opt(p.get("cache_write"), f"{where}.cache_write"),
        cache_write_1h=_money_opt(p.get("cache_write_1h"), f"{where}.cache_write_1h"),
        reasoning=_money_opt(p.get("reasoning"), f"{where}.reasoning"),
        request=_money_opt(p.get("request"), f"{where}.request"),
        tiers=tuple(sorted(tiers, key=lambda t: t.min_prompt_tokens)),
        source=_str_opt(p.get("source"), f"{where}.source"),
        as_of=_date_opt(p.get("as_of"), f"{where}.as_of"),
    )
