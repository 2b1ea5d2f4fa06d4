"""A model list read into config entries (`keeprouter catalogue import`): pure, no I/O.

Two shapes are read, item by item, so one list may mix them:
- OpenRouter's public list (`GET /api/v1/models`, also what KeepRouter serves there): `pricing` as
  USD-per-token strings (`prompt`, `completion`, `input_cache_read`, `input_cache_write`,
  `internal_reasoning`, `request` per request), `context_length`, `top_provider.max_completion_tokens`,
  `architecture.input_modalities` / `output_modalities`, `supported_parameters`;
- an OpenAI-compatible host's own list (`GET /v1/models`): ids, `owned_by`, and the context window
  under whichever name the host gives it (`context_length`, `context_window`, `max_model_len`,
  `max_context_length`), but no prices.

Prices become the config's USD per 1M tokens, converted exactly (Decimal, never a binary float on
the way), each with the list it was read from (`source`) and the day (`as_of`). An item without a
usable price (none given, or OpenRouter's `-1` for a price that varies) is set apart as unpriced:
the caller writes it for the operator to price, never serves it at a guessed price.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

_MILLION = Decimal(1_000_000)
# OpenRouter's per-token price fields -> the config's per-1M-token keys (`request` is per request).
_PER_TOKEN = {
    "prompt": "input",
    "completion": "output",
    "input_cache_read": "cache_read",
    "input_cache_write": "cache_write",
    "internal_reasoning": "reasoning",
}
# `owned_by` values that name a server or an account, not who made the model.
_NOT_MAKERS = frozenset({"system", "organization-owner", "user", "vllm", "library", "sglang", "llamacpp"})
_CONTEXT_FIELDS = ("context_length", "context_window", "max_model_len", "max_context_length")
# supported_parameters -> the config's capabilities (streaming is every chat endpoint's).
_CAPABILITY_OF = {
    "tools": "tools",
    "tool_choice": "tools",
    "reasoning": "reasoning",
    "include_reasoning": "reasoning",
    "response_format": "response_format",
    "structured_outputs": "response_format",
}


@dataclass
class Imported:
    """Config entries by model id: `priced` can be served as they are; `unpriced` need the
    operator's prices first; `refused` says, per id, why an item was not read."""

    priced: dict[str, dict[str, Any]] = field(default_factory=dict)
    unpriced: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def read_models(
    data: Any,
    *,
    provider: str,
    source: str,
    as_of: dt.date,
    match: Iterable[str] = (),
) -> Imported:
    """Read a model list (`{"data": [...]}`, or the bare list) into config entries for `provider`.

    `match`: globs on the model id; when given, only ids matching one of them are read."""
    items = data.get("data") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise ValueError('not a model list: expected {"data": [...]}')
    globs = list(match)
    out = Imported()
    for item in items:
        mid = item.get("id") if isinstance(item, Mapping) else None
        if not isinstance(mid, str) or not mid.strip():
            continue
        if globs and not any(fnmatch.fnmatchcase(mid, g) for g in globs):
            continue
        try:
            entry, priced = _entry(item, provider, source, as_of)
        except ValueError as e:
            out.refused[mid] = str(e)
            continue
        (out.priced if priced else out.unpriced)[mid] = entry
    return out


def per_million(per_token: Any) -> Decimal | None:
    """An OpenRouter price string (USD per token) as USD per 1M tokens, exactly; None for a price
    that is not a fixed number (OpenRouter's `-1`: it varies by request)."""
    d = _decimal(per_token)
    return None if d is None else (d * _MILLION).normalize()


def _decimal(v: Any) -> Decimal | None:
    """A price as given, exactly (str() first: a JSON float 0.2 is read as 0.2); None if negative."""
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise ValueError(f"price {v!r} is not a number")
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise ValueError(f"price {v!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"price {v!r} is not a number")
    return None if d < 0 else d.normalize()


def _entry(item: Mapping[str, Any], provider: str, source: str, as_of: dt.date) -> tuple[dict[str, Any], bool]:
    mid = str(item["id"])
    name, maker = _name_and_maker(item)
    model: dict[str, Any] = {"name": name}
    if maker:
        model["maker"] = maker
    description = item.get("description")
    if isinstance(description, str) and description.strip():
        model["description"] = description.strip()
    created = item.get("created")
    if isinstance(created, int) and not isinstance(created, bool) and created > 0:
        model["created"] = created
    context = next((v for k in _CONTEXT_FIELDS if _count(v := item.get(k))), None)
    if context is not None:
        model["context_length"] = context
    arch = _mapping(item.get("architecture"))
    inputs = [m for m in arch.get("input_modalities") or [] if isinstance(m, str)]
    if inputs and inputs != ["text"]:
        model["input_modalities"] = inputs
    outputs = [m for m in arch.get("output_modalities") or [] if isinstance(m, str)]
    modality = _modality(outputs)
    if modality != "text->text":
        model["modality"] = modality

    endpoint: dict[str, Any] = {"provider": provider, "model": mid}
    pricing, priced = _pricing(item.get("pricing"), source, as_of, produces_text=modality == "text->text")
    endpoint["pricing"] = pricing
    if modality == "text->text":
        endpoint["capabilities"] = _capabilities(item.get("supported_parameters"), inputs)
    # OpenRouter's top provider's cap, or a host's own (Groq lists it beside the id)
    cap = _mapping(item.get("top_provider")).get("max_completion_tokens") or item.get("max_completion_tokens")
    if _count(cap):
        endpoint["max_output_tokens"] = cap
    model["endpoints"] = [endpoint]
    return model, priced


def _mapping(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _name_and_maker(item: Mapping[str, Any]) -> tuple[str, str | None]:
    """OpenRouter names read "Maker: Model"; else the id's author part (`Qwen/Qwen3-32B`); else the
    host's `owned_by`, unless it names the server rather than the maker (vLLM's "vllm")."""
    mid = str(item["id"])
    name = item.get("name") if isinstance(item.get("name"), str) and item.get("name") else mid
    maker, sep, rest = str(name).partition(": ")
    if sep and rest:
        return rest, maker
    author, slash, _ = mid.partition("/")
    if slash and author:
        return str(name), author
    owned = item.get("owned_by")
    if isinstance(owned, str) and owned and owned.lower() not in _NOT_MAKERS:
        return str(name), owned
    return str(name), None


def _modality(outputs: list[str]) -> str:
    if any(o in ("embedding", "embeddings") for o in outputs):
        return "text->embedding"
    if "rerank" in outputs:
        return "text->rerank"
    return "text->text"


def _capabilities(params: Any, inputs: list[str]) -> list[str]:
    caps = {"streaming"}
    for p in params if isinstance(params, list) else []:
        if p in _CAPABILITY_OF:
            caps.add(_CAPABILITY_OF[p])
    if "image" in inputs:
        caps.add("vision")
    order = ("streaming", "tools", "vision", "reasoning", "response_format")
    return [c for c in order if c in caps]


def _pricing(raw: Any, source: str, as_of: dt.date, *, produces_text: bool) -> tuple[dict[str, Any], bool]:
    """(the endpoint's `pricing:`, whether it is complete). Incomplete: the keys the operator must
    fill are there, as null, beside where and when the list was read."""
    prices: dict[str, Any] = {}
    if isinstance(raw, Mapping):
        for theirs, ours in _PER_TOKEN.items():
            if theirs in raw and (v := per_million(raw[theirs])) is not None:
                prices[ours] = v
        if "request" in raw and (r := _decimal(raw["request"])):
            prices["request"] = r  # USD per request, as is
        variable = any(per_million(raw[k]) is None for k in ("prompt", "completion") if k in raw)
    else:
        variable = False
    needed = ("input", "output") if produces_text else ("input",)
    complete = not variable and all(k in prices for k in needed)
    if not complete:
        prices = {k: None for k in needed}
    # Zeros add nothing a reader needs (a free model says input: 0, output: 0 and no more).
    prices = {k: v for k, v in prices.items() if k in needed or v}
    return {**{k: _number(v) for k, v in prices.items()}, "source": source, "as_of": as_of}, complete


def _number(v: Decimal | None) -> int | float | str | None:
    """A Decimal as the YAML value that reads back as exactly it: the config reads a price through
    `str()`, and a float's repr is the shortest text that round-trips; a price with more digits
    than a float keeps is written as a string, which the config reads exactly too."""
    if v is None:
        return None
    if v == v.to_integral_value():
        return int(v)
    f = float(v)
    return f if Decimal(repr(f)) == v else format(v, "f")
