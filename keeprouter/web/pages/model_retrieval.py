"""What a model page says of an embedding or a rerank model (`modality` text->embedding or
text->rerank), beside what `model.py` says of a chat model.

Such a model is billed per input token (a reranker also per search, `pricing.request`) and answers
on /v1/embeddings or /v1/rerank only, so its page quotes no output price, prices no reply, and asks
no question about streaming or tools: its own example cost, its vector length, its own endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from keeprouter.config import ModelConfig, Pricing
from keeprouter.web import format as f
from keeprouter.web.charts import Table
from keeprouter.web.pages.common import Site, modality

EMBEDDING, RERANK = "text->embedding", "text->rerank"
# The typical job each page prices: a document set split into chunks, embedded once; one search
# that reranks the first retrieval's candidates.
EXAMPLE_CHUNKS, EXAMPLE_CHUNK_TOKENS = 1_000, 500
EXAMPLE_DOCS, EXAMPLE_DOC_TOKENS = 50, 200
_MILLION = Decimal(1_000_000)
# Where each is called, and which client speaks that shape.
ENDPOINT = {
    EMBEDDING: ("/v1/embeddings", "OpenAI's embeddings API: the OpenAI SDK, LangChain, LlamaIndex"),
    RERANK: ("/v1/rerank", "Cohere's v2 rerank API: the Cohere SDK's ClientV2, curl"),
}


@dataclass(frozen=True, slots=True)
class Faq:
    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class Words:
    """The parts of a retrieval model's page that differ from a chat model's."""

    intro: str
    example_cost: str
    specs: Table
    faq: tuple[Faq, ...]


def is_retrieval(model: ModelConfig) -> bool:
    return model.modality in ENDPOINT


def per_search(request: Decimal | None) -> str:
    """A rerank endpoint's price per call (USD, exact), or a dash when it has none."""
    return f.DASH if request is None else f"{f.price(request)} per search"


def example(model: ModelConfig, p: Pricing) -> tuple[str, str]:
    """(the typical job in words, its cost in words) at prices `p`."""
    if model.modality == EMBEDDING:
        tokens = EXAMPLE_CHUNKS * EXAMPLE_CHUNK_TOKENS
        job = f"embedding {EXAMPLE_CHUNKS:,} chunks of {EXAMPLE_CHUNK_TOKENS:,} tokens ({tokens:,} tokens)"
        return job, f.about_usd(p.input * tokens / _MILLION)
    tokens = EXAMPLE_DOCS * EXAMPLE_DOC_TOKENS
    job = f"one search ranking {EXAMPLE_DOCS:,} documents of {EXAMPLE_DOC_TOKENS:,} tokens ({tokens:,} tokens)"
    return job, f.about_usd(p.input * tokens / _MILLION + (p.request or 0))


def price_words(model: ModelConfig, p: Pricing, where: str) -> str:
    """ "Input costs $0.02 per 1M tokens" (+ the per-search price) (+ `where`, the cheapest provider)."""
    words = f"Input costs {f.per_million(p.input)}"
    if model.modality == RERANK and p.request is not None:
        words += f", plus {f.price(p.request)} per search"
    return words + where


def words(model: ModelConfig, site: Site, p: Pricing, where: str, unavailable: str) -> Words:
    kind = "an embedding model" if model.modality == EMBEDDING else "a rerank model"
    path, clients = ENDPOINT[model.modality]
    prices = price_words(model, p, where)
    job, cost = example(model, p)
    maker = model.maker or "an unnamed maker"
    intro = (
        f"{model.name} is {kind} by {maker}, served through {site.name} at {path}. {prices}, billed at "
        f"cost with no markup: {job} costs {cost}."
    )
    rows: list[tuple[str, str]] = [("Maker", model.maker or f.DASH), ("Modality", modality(model))]
    if model.modality == EMBEDDING:
        rows.append(("Dimensions", f.count(model.dimensions) if model.dimensions else f.DASH))
    context = f.tokens(model.context_length) + (" per input" if model.modality == EMBEDDING else "")
    rows += [("Context length", context), ("Input price", f.per_million(p.input))]
    if model.modality == RERANK:
        rows.append(("Search price", per_search(p.request)))
    rows += [("API", f"{path} ({clients})"), ("Model id", model.id)]
    return Words(intro, cost, Table(("Spec", "Value"), tuple(rows)), _faq(model, site, prices, job, cost, unavailable))


def _faq(model: ModelConfig, site: Site, prices: str, job: str, cost: str, unavailable: str) -> tuple[Faq, ...]:
    name = model.name
    path, clients = ENDPOINT[model.modality]
    how = (
        f'Send "model": "{model.id}" with your {site.name} key to {site.base_url}{path} ({clients}); '
        "the code samples above run as printed. The chat endpoints refuse it with a 400 naming its modality."
    )
    if unavailable:
        how += f" Here, {name} is {unavailable}."
    out = [
        Faq(f"How much does {name} cost?", f"{prices}, billed at cost with no markup."),
        Faq(f"What does a typical {name} job cost?", f"{job[0].upper()}{job[1:]} costs {cost}."),
        Faq(f"Who makes {name}?", f"{name} is made by {model.maker}." if model.maker else "Its maker is not listed."),
        Faq(f"How do I call {name}?", how),
    ]
    if model.modality == EMBEDDING:
        dims = (
            f"{model.dimensions:,} by default." if model.dimensions
            else "Its catalogue entry does not say; the length of a returned vector tells."
        )  # fmt: skip
        out.append(Faq(f"How many dimensions do {name}'s vectors have?", dims))
        ctx = f"{f.tokens(model.context_length)} per input text; a request may send many inputs."
    else:
        ctx = f"{f.tokens(model.context_length)}."
    out.append(Faq(f"What is the context length of {name}?", ctx))
    return tuple(out)
