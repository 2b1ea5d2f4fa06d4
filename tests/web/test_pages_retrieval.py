"""Page data of embedding and rerank models (web/pages/model_retrieval.py, models.py, samples.py):
their own prices, dimensions and samples, no chat wording; the /models type filter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from keeprouter.config import Config, parse_config
from keeprouter.web.pages import guides, model, models
from keeprouter.web.pages.common import Site
from keeprouter.web.pages.samples import samples_for

SITE = Site("KeepRouter", "https://router.example", dt.date(2026, 12, 2))
CHAT_WORDS = ("output", "reply", "streaming", "tool")


def _ep(provider: str, upstream: str, **pricing: float) -> dict[str, Any]:
    return {"provider": provider, "model": upstream, "pricing": pricing}


def config() -> Config:
    raw = {
        "providers": {
            "a": {"api": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"},
            "b": {"api": "openai", "base_url": "http://127.0.0.1:8/v1", "api_key": "k"},
        },
        "models": {
            "emb": {
                "name": "Embed One", "maker": "Acme", "modality": "text->embedding", "dimensions": 1536,
                "context_length": 8192, "endpoints": [_ep("a", "e-a", input=0.13), _ep("b", "e-b", input=0.02)],
            },
            "emb-plain": {"name": "Embed Plain", "modality": "text->embedding", "context_length": 512,
                          "endpoints": [_ep("a", "e-p", input=0.01)]},
            "rr": {
                "name": "Rerank One", "maker": "Acme", "modality": "text->rerank", "context_length": 4096,
                "endpoints": [_ep("a", "r-a", input=0.05, request=0.002), _ep("b", "r-b", input=0.1)],
            },
            "chat": {"name": "Chat One", "maker": "Acme", "context_length": 32000,
                     "endpoints": [{**_ep("a", "c", input=1, output=2), "capabilities": ["streaming", "tools"]}]},
        },
    }  # fmt: skip
    return parse_config(raw, env={})


def page(cfg: Config, mid: str) -> model.ModelPage:
    return model.build(cfg, SITE, cfg.models[mid], {}, [], [], [])


def words_of(p: model.ModelPage) -> str:
    """Everything a reader reads on the page, but its code samples and its related-models table."""
    cells = [c for t in (p.specs, p.providers) for row in (t.head, *t.rows) for c in row]
    return " ".join([p.intro, *map(str, cells), *(q.question + " " + q.answer for q in p.faq)]).lower()


def test_an_embedding_models_page_quotes_input_and_dimensions_and_no_chat_wording() -> None:
    p = page(config(), "emb")
    assert p.intro == (
        "Embed One is an embedding model by Acme, served through KeepRouter at /v1/embeddings. Input costs "
        "$0.02 per 1M tokens on b, the cheapest of 2 providers, billed at cost with no markup: embedding 1,000 "
        "chunks of 500 tokens (500,000 tokens) costs about $0.01."
    )
    assert p.example_cost == "about $0.01"  # 500,000 x $0.02 per 1M
    specs = dict(p.specs.rows)
    assert specs["Dimensions"] == "1,536" and specs["Modality"] == "text → embedding"
    assert specs["Input price"] == "$0.02 per 1M tokens" and specs["Context length"] == "8,192 tokens per input"
    assert specs["API"].startswith("/v1/embeddings") and "Output price" not in specs
    assert p.providers.head == ("Provider", "Input", "Context", "Uptime (1 day)", "Latency p50", "Status")
    assert p.providers.rows == (("a", "$0.13", "8,192", "—", "—", "live"), ("b", "$0.02", "8,192", "—", "—", "live"))
    faq = {q.question: q.answer for q in p.faq}
    assert faq["How many dimensions do Embed One's vectors have?"] == "1,536 by default."
    assert "https://router.example/v1/embeddings" in faq["How do I call Embed One?"]
    assert [g.href for g in p.guides] == ["/docs/quickstart"]
    for word in CHAT_WORDS:
        assert word not in words_of(p), word


def test_an_embedding_model_without_dimensions_says_so() -> None:
    p = page(config(), "emb-plain")
    assert dict(p.specs.rows)["Dimensions"] == "—"
    faq = {q.question: q.answer for q in p.faq}
    assert "does not say" in faq["How many dimensions do Embed Plain's vectors have?"]
    assert "an unnamed maker" in p.intro


def test_a_rerank_models_page_quotes_input_and_per_search_prices() -> None:
    p = page(config(), "rr")
    assert "Input costs $0.05 per 1M tokens, plus $0.002 per search on a, the cheapest of 2 providers" in p.intro
    # one search over 50 documents of 200 tokens: 10,000 x $0.05 per 1M + $0.002
    assert p.example_cost == "about $0.0025"
    assert "one search ranking 50 documents of 200 tokens (10,000 tokens) costs about $0.0025" in p.intro
    specs = dict(p.specs.rows)
    assert specs["Search price"] == "$0.002 per search" and "Dimensions" not in specs
    assert specs["API"].startswith("/v1/rerank")
    assert p.providers.head == ("Provider", "Input", "Per search", "Context", "Uptime (1 day)", "Latency p50", "Status")
    assert [r[:3] for r in p.providers.rows] == [("a", "$0.05", "$0.002 per search"), ("b", "$0.10", "—")]
    for word in CHAT_WORDS:
        assert word not in words_of(p), word


def test_a_chat_models_page_keeps_its_chat_words_and_lists_retrieval_models_without_output() -> None:
    p = page(config(), "chat")
    assert "output $2.00 per 1M tokens" in p.intro and "reply" in p.intro
    assert p.providers.head[2] == "Output"
    related = {str(r[0].title): r for r in p.related.rows if not isinstance(r[0], str)}
    assert related["Embed One"][1:3] == ("$0.02", "—") and related["Rerank One"][2] == "—"


@pytest.mark.parametrize(
    ("mid", "endpoint", "langs"),
    [("emb", "/v1/embeddings", ["sh", "python", "js"]), ("rr", "/v1/rerank", ["sh", "python"]),
     ("chat", "/v1/chat/completions", ["sh", "python", "js", "python", "sh"])],
)  # fmt: skip
def test_each_model_gets_the_samples_of_the_endpoint_that_serves_it(mid: str, endpoint: str, langs: list[str]) -> None:
    p = page(config(), mid)
    assert [s.lang for s in p.samples] == langs
    assert p.samples[0].code.startswith(f"curl https://router.example{endpoint} ")
    assert all(f'"{mid}"' in s.code for s in p.samples if s.lang != "sh")


def test_retrieval_samples_call_their_own_api() -> None:
    emb = {s.title: s.code for s in samples_for("https://r.example", "emb", "text->embedding")}
    assert "client.embeddings.create(" in emb["Python (OpenAI SDK)"]
    assert 'OpenAI(base_url="https://r.example/v1"' in emb["Python (OpenAI SDK)"]
    assert "client.embeddings.create({" in emb["JavaScript (OpenAI SDK)"]
    rr = {s.title: s.code for s in samples_for("https://r.example", "rr", "text->rerank")}
    assert 'cohere.ClientV2(base_url="https://r.example"' in rr["Python (Cohere SDK)"]
    assert '"top_n": 2' in rr["cURL"]


def test_the_models_list_filters_by_type() -> None:
    cfg = config()
    ours = {"emb", "emb-plain", "rr", "chat"}  # beside the built-in catalogue's models

    def shown(kind: str) -> set[str]:
        built = models.build(cfg, SITE, [], {"modality": kind})
        assert built.modality == kind
        return {r.id for r in built.rows}

    assert shown("embedding") & ours == {"emb", "emb-plain"}
    assert "text-embedding-3-small" in shown("embedding")
    assert all(cfg.models[m].modality == "text->embedding" for m in shown("embedding"))
    assert shown("rerank") & ours == {"rr"}
    assert shown("text") & ours == {"chat"} and "text-embedding-3-small" not in shown("text")
    assert ("embedding", "Embeddings") in models.build(cfg, SITE, [], {}).modality_options
    everything = models.build(cfg, SITE, [], {"modality": "nonsense"})  # an unknown type filters nothing out
    assert everything.modality == "" and len(everything.rows) == everything.total


def test_the_models_list_shows_what_a_retrieval_model_is_not_chat_capabilities() -> None:
    rows = {r.id: r for r in models.build(config(), SITE, [], {}).rows}
    emb, rr, chat = rows["emb"], rows["rr"], rows["chat"]
    assert (emb.modality, emb.output, emb.capabilities, emb.capability_ids) == (
        "Embeddings",
        "—",
        ("1,536 dimensions",),
        "",
    )
    assert (rr.modality, rr.output, rr.capabilities) == ("Rerank", "—", ())
    assert (chat.modality, chat.output) == ("Chat", "$2.00")
    # the capability filter never lists a retrieval model as streaming (its endpoints' default)
    assert "emb" not in {r.id for r in models.build(config(), SITE, [], {"capability": "streaming"}).rows}


def test_the_guides_samples_never_pick_an_embedding_model() -> None:
    # only retrieval models are cheaper than the chat model: the chat samples still pick the chat model
    picked = guides.example_model(config())
    assert picked is not None and picked.id == "chat"


def test_a_local_embedding_model_is_listed_free_and_says_which_variable_enables_it() -> None:
    builtin = parse_config({}, env={})
    nomic = builtin.models["nomic-embed-text"]
    p = model.build(builtin, SITE, nomic, {}, [], [], [])
    assert (p.example_cost, dict(p.specs.rows)["Dimensions"]) == ("$0", "768")
    assert p.unavailable == "not available on this server: set OLLAMA_BASE_URL"
    local = parse_config({}, env={"OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1"})
    assert [e.model for e in local.models["nomic-embed-text"].endpoints] == ["nomic-embed-text"]
