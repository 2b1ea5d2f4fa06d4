"""`/models`: every catalogue model, routable here or not, filtered and sorted as asked.

The same filter and sort run here (so the page works without JavaScript, and the Markdown form takes
the same query) and in the browser as you type (static/models.js reads the rows' data attributes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from keeprouter.billing.headline import headline
from keeprouter.config import Config, ModelConfig
from keeprouter.store.base import ActivityRow
from keeprouter.web import format as f
from keeprouter.web.pages.common import (
    CAPABILITY_LABELS,
    Site,
    capabilities,
    prices_as_of,
    unavailable_note,
)
from keeprouter.web.sources import PageSources

USAGE_DAYS = 30
# What a model does, as the filter names it: the output half of its `modality` (config.MODALITIES).
MODALITY_LABELS = {"text": "Chat", "embedding": "Embeddings", "rerank": "Rerank"}
SORTS = {
    "newest": "Newest",
    "price": "Price (low to high)",
    "context": "Context (largest)",
    "usage": f"Usage (tokens, last {USAGE_DAYS} days)",
    "name": "Name",
}


@dataclass(frozen=True, slots=True)
class ModelRow:
    id: str
    name: str
    maker: str
    description: str
    input: str
    output: str
    context: str
    capabilities: tuple[str, ...]  # labels
    capability_ids: str  # space-separated ids, for the live filter
    modality_id: str  # a MODALITY_LABELS key, for the filter
    modality: str  # its label
    usage: str
    created: str
    unavailable: str
    providers: int
    # sort keys, as the live filter reads them
    price_key: str
    context_key: int
    usage_key: int
    created_key: int

    @property
    def search_text(self) -> str:
        return f"{self.id} {self.name} {self.maker} {self.description}".lower()


@dataclass(frozen=True, slots=True)
class ModelsPage:
    site: Site
    path: str
    title: str
    rows: tuple[ModelRow, ...]
    total: int
    available: int
    makers: tuple[str, ...]
    capability_options: tuple[tuple[str, str], ...]  # (id, label)
    modality_options: tuple[tuple[str, str], ...]  # (id, label)
    sorts: tuple[tuple[str, str], ...]
    q: str
    maker: str
    capability: str
    modality: str
    sort: str
    prices_as_of: str


async def models_page(config: Config, sources: PageSources, site: Site, query: Mapping[str, str]) -> ModelsPage:
    return build(config, site, await sources.activity(USAGE_DAYS), query)


def _usage(rows: Sequence[ActivityRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.model] = out.get(r.model, 0) + r.prompt_tokens + r.completion_tokens
    return out


def _row(config: Config, m: ModelConfig, usage: int) -> ModelRow:
    ep = headline(m)
    assert ep is not None  # every configured model has at least one listed endpoint
    kind = m.modality.partition("->")[2]
    if kind == "text":
        caps = sorted({c for e in (*m.endpoints, *m.unconfigured) for c in e.capabilities})
        labels = tuple(capabilities(m))
    else:  # chat capabilities (streaming, tools) mean nothing to an embedding or rerank model
        caps, labels = [], (f"{m.dimensions:,} dimensions",) if m.dimensions else ()
    return ModelRow(
        id=m.id,
        name=m.name,
        maker=m.maker,
        description=m.description,
        input=f.price(ep.pricing.input),
        output=f.price(ep.pricing.output) if kind == "text" else f.DASH,  # no output billed
        context=f.count(m.context_length),
        capabilities=labels,
        capability_ids=" ".join(caps),
        modality_id=kind,
        modality=MODALITY_LABELS[kind],
        usage=f.count(usage),
        created=f.date(m.created),
        unavailable=unavailable_note(config, m),
        providers=len({e.provider for e in (*m.endpoints, *m.unconfigured)}),
        price_key=str(ep.pricing.input + ep.pricing.output),
        context_key=m.context_length,
        usage_key=usage,
        created_key=m.created,
    )


def build(config: Config, site: Site, activity: Sequence[ActivityRow], query: Mapping[str, str]) -> ModelsPage:
    usage = _usage(activity)
    models = [m for m in config.models.values() if m.endpoints or m.unconfigured]
    all_rows = [_row(config, m, usage.get(m.id, 0)) for m in models]
    q = query.get("q", "").strip()[:200]
    maker = query.get("maker", "")
    capability = query.get("capability", "")
    modality = query.get("modality", "")
    if modality not in MODALITY_LABELS:
        modality = ""  # an unknown type filters nothing out, as an unknown sort sorts by newest
    sort = query.get("sort", "newest")
    if sort not in SORTS:
        sort = "newest"
    rows = [
        r
        for r in all_rows
        if (not q or q.lower() in r.search_text)
        and (not maker or r.maker == maker)
        and (not capability or capability in r.capability_ids.split())
        and (not modality or r.modality_id == modality)
    ]
    rows.sort(key=lambda r: r.name.lower())
    if sort == "newest":
        rows.sort(key=lambda r: r.created_key, reverse=True)
    elif sort == "price":
        rows.sort(key=lambda r: Decimal(r.price_key))
    elif sort == "context":
        rows.sort(key=lambda r: r.context_key, reverse=True)
    elif sort == "usage":
        rows.sort(key=lambda r: r.usage_key, reverse=True)
    return ModelsPage(
        site=site,
        path="/models",
        title="Models",
        rows=tuple(rows),
        total=len(all_rows),
        available=sum(1 for r in all_rows if not r.unavailable),
        makers=tuple(sorted({r.maker for r in all_rows if r.maker})),
        capability_options=tuple(CAPABILITY_LABELS.items()),
        modality_options=tuple(MODALITY_LABELS.items()),
        sorts=tuple(SORTS.items()),
        q=q,
        maker=maker,
        capability=capability,
        modality=modality,
        sort=sort,
        prices_as_of=prices_as_of(models, site.today),
    )


def newest_first(config: Config, limit: int) -> list[ModelConfig]:
    models = [m for m in config.models.values() if m.endpoints or m.unconfigured]
    return sorted(models, key=lambda m: (-m.created, m.name.lower()))[:limit]
