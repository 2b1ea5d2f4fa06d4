"""Model lists read into config entries: OpenRouter's prices converted exactly to USD per 1M tokens,
the source and date on every price, unpriced models set apart, and what each list says of context,
modalities and parameters."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from keeprouter.catalogue.importer import per_million, read_models

FIXTURES = Path(__file__).parent / "fixtures"
SOURCE = "https://openrouter.ai/api/v1/models"
DAY = dt.date(2026, 12, 7)


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _openrouter(**kw: Any) -> Any:
    return read_models(_fixture("openrouter_models.json"), provider="router", source=SOURCE, as_of=DAY, **kw)


@pytest.mark.parametrize(
    ("per_token", "expected"),
    [("0.000003", "3"), ("0.0000003", "0.3"), ("0.00000375", "3.75"), ("0.000000038", "0.038"),
     ("0.0000011", "1.1"), ("0", "0"), (0.00000012, "0.12")],
)  # fmt: skip
def test_a_per_token_price_becomes_the_exact_price_per_million(per_token: Any, expected: str) -> None:
    assert per_million(per_token) == Decimal(expected)


def test_a_negative_price_is_a_price_that_varies_and_a_non_number_is_refused() -> None:
    assert per_million("-1") is None
    for bad in ("n/a", "NaN", True, None):
        with pytest.raises(ValueError, match="not a number"):
            per_million(bad)


def test_an_openrouter_model_becomes_a_model_with_one_priced_endpoint() -> None:
    sonnet = _openrouter().priced["anthropic/claude-sonnet-4.5"]
    assert sonnet["name"] == "Claude Sonnet 4.5" and sonnet["maker"] == "Anthropic"
    assert sonnet["context_length"] == 1000000 and sonnet["created"] == 1759161676
    assert sonnet["input_modalities"] == ["text", "image", "file"]
    assert sonnet["description"].startswith("Claude Sonnet 4.5 is")
    [ep] = sonnet["endpoints"]
    assert ep["provider"] == "router" and ep["model"] == "anthropic/claude-sonnet-4.5"
    assert ep["max_output_tokens"] == 64000
    assert ep["pricing"] == {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75,
                             "source": SOURCE, "as_of": DAY}  # fmt: skip
    assert ep["capabilities"] == ["streaming", "tools", "vision", "reasoning", "response_format"]


def test_prices_read_back_exactly_as_the_config_reads_numbers() -> None:
    llama = _openrouter().priced["meta-llama/llama-3.3-70b-instruct"]["endpoints"][0]["pricing"]
    assert (Decimal(str(llama["input"])), Decimal(str(llama["output"]))) == (Decimal("0.038"), Decimal("0.12"))
    o4 = _openrouter().priced["openai/o4-mini"]["endpoints"][0]["pricing"]
    assert Decimal(str(o4["cache_read"])) == Decimal("0.275")


def test_a_free_model_costs_zero_and_a_varying_price_leaves_the_model_unpriced() -> None:
    got = _openrouter()
    free = got.priced["deepseek/deepseek-chat-v3.1:free"]["endpoints"][0]
    assert free["pricing"] == {"input": 0, "output": 0, "source": SOURCE, "as_of": DAY}
    assert free["capabilities"] == ["streaming", "reasoning"]
    assert "openrouter/auto" not in got.priced
    auto = got.unpriced["openrouter/auto"]["endpoints"][0]
    assert auto["pricing"] == {"input": None, "output": None, "source": SOURCE, "as_of": DAY}


def test_an_embedding_model_keeps_its_modality_and_needs_no_output_price() -> None:
    emb = _openrouter().priced["qwen/qwen3-embedding-8b"]
    assert emb["modality"] == "text->embedding"
    [ep] = emb["endpoints"]
    assert "capabilities" not in ep
    assert ep["pricing"] == {"input": 0.01, "source": SOURCE, "as_of": DAY}


def test_match_keeps_only_the_ids_a_glob_matches() -> None:
    got = _openrouter(match=["anthropic/*", "*:free"])
    assert sorted([*got.priced, *got.unpriced]) == ["anthropic/claude-sonnet-4.5", "deepseek/deepseek-chat-v3.1:free"]


def test_a_host_list_gives_ids_and_context_windows_but_no_prices() -> None:
    src = "https://api.groq.com/openai/v1/models"
    got = read_models(_fixture("groq_models.json"), provider="groq", source=src, as_of=DAY)
    assert got.priced == {}
    llama = got.unpriced["llama-3.1-8b-instant"]
    assert (llama["name"], llama["maker"], llama["context_length"]) == ("llama-3.1-8b-instant", "Meta", 131072)
    assert llama["endpoints"][0]["max_output_tokens"] == 131072
    assert llama["endpoints"][0]["pricing"] == {"input": None, "output": None, "source": src, "as_of": DAY}
    vllm = read_models(_fixture("vllm_models.json"), provider="vllm", source="http://127.0.0.1:8000/v1/models",
                       as_of=DAY).unpriced["Qwen/Qwen3-32B"]  # fmt: skip
    assert vllm["context_length"] == 32768 and vllm["maker"] == "Qwen"  # vLLM owns it: the id's author


def test_an_item_with_a_bad_price_is_refused_by_name_and_the_rest_is_read() -> None:
    data = {"data": [{"id": "a/good", "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
                     {"id": "a/bad", "pricing": {"prompt": "cheap", "completion": "0"}},
                     {"object": "model"}]}  # fmt: skip
    got = read_models(data, provider="p", source=SOURCE, as_of=DAY)
    assert list(got.priced) == ["a/good"] and "not a number" in got.refused["a/bad"]


def test_something_that_is_not_a_model_list_is_refused() -> None:
    with pytest.raises(ValueError, match="not a model list"):
        read_models({"error": "nope"}, provider="p", source=SOURCE, as_of=DAY)


def test_a_price_with_more_digits_than_a_float_keeps_is_written_exactly_as_text() -> None:
    data = {"data": [{"id": "a/precise", "pricing": {"prompt": "0.00000012345678901234567891", "completion": "0"}}]}
    price = read_models(data, provider="p", source=SOURCE, as_of=DAY).priced["a/precise"]["endpoints"][0]["pricing"]
    assert price["input"] == "0.12345678901234567891" and price["output"] == 0
