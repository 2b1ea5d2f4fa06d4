"""`modality` and `pricing.request`: embedding and rerank models in the config file."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from keeprouter.billing import pricing
from keeprouter.config import ConfigError, Pricing, parse_config
from keeprouter.formats.canonical import Usage

PROVIDERS = {"local": {"api": "openai", "base_url": "http://127.0.0.1:9/v1"}}


def _models(model: dict[str, Any]) -> dict[str, Any]:
    return {"providers": PROVIDERS, "models": {"m": model}}


def test_embedding_and_rerank_models_need_no_output_price() -> None:
    cfg = parse_config(
        {
            "providers": PROVIDERS,
            "models": {
                "emb": {
                    "modality": "text->embedding",
                    "endpoints": [{"provider": "local", "model": "e", "pricing": {"input": 0.02}}],
                },
                "rr": {
                    "modality": "text->rerank",
                    "endpoints": [{"provider": "local", "model": "r", "pricing": {"input": 0.05, "request": 0.002}}],
                },
            },
        },
        env={},
    )
    emb, rr = cfg.models["emb"], cfg.models["rr"]
    assert emb.modality == "text->embedding" and emb.endpoints[0].pricing.output == 0
    assert rr.modality == "text->rerank" and rr.endpoints[0].pricing.request == Decimal("0.002")
    assert next(m for m in cfg.models.values() if m.id not in ("emb", "rr")).modality == "text->text"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"modality": "text->image", "endpoints": [{"provider": "local", "model": "x", "pricing": {"input": 1}}]},
            "models.m.modality: must be one of text->text, text->embedding, text->rerank, got 'text->image'",
        ),
        (
            {"endpoints": [{"provider": "local", "model": "x", "pricing": {"input": 1}}]},
            "models.m.endpoints[0].pricing: needs input and output (USD per 1M tokens)",
        ),
        (
            {
                "modality": "text->rerank",
                "endpoints": [{"provider": "local", "model": "x", "pricing": {"input": 1, "request": -1}}],
            },
            "models.m.endpoints[0].pricing.request: must be >= 0",
        ),
    ],
)
def test_bad_modality_or_request_price_names_the_key(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_models(model), env={})
    assert str(caught.value) == message


def test_request_price_is_added_once_per_call() -> None:
    p = Pricing(input=Decimal("0.05"), output=Decimal(0), request=Decimal("0.002"))
    assert pricing.cost(Usage(input_tokens=1000), p) == Decimal("0.00205")
    assert pricing.cost(Usage(), p) == Decimal("0.002")
    assert pricing.worst_case(1000, 0, p) == Decimal("0.00205")
    assert pricing.cost(Usage(input_tokens=1000), Pricing(input=Decimal("0.02"), output=Decimal(0))) == Decimal(
        "0.00002"
    )


def test_the_pages_show_the_output_modality() -> None:
    from keeprouter.web.pages.common import modality

    cfg = parse_config(
        {
            "providers": PROVIDERS,
            "models": {
                "emb": {
                    "modality": "text->embedding",
                    "endpoints": [{"provider": "local", "model": "e", "pricing": {"input": 0.02}}],
                }
            },
        },
        env={},
    )
    assert modality(cfg.models["emb"]) == "text → embedding"


def test_an_embedding_model_may_state_its_dimensions() -> None:
    endpoint = {"provider": "local", "model": "e", "pricing": {"input": 0.02}}
    emb = {"modality": "text->embedding", "endpoints": [endpoint]}
    assert parse_config(_models({**emb, "dimensions": 768}), env={}).models["m"].dimensions == 768
    assert parse_config(_models(emb), env={}).models["m"].dimensions is None  # the default: not stated
    # the built-in catalogue states it for its embedding models
    builtin = parse_config({}, env={}).models
    assert builtin["text-embedding-3-small"].dimensions == 1536
    assert all(m.dimensions for m in builtin.values() if m.modality == "text->embedding")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"dimensions": 0}, "models.m.dimensions: must be a positive integer"),
        ({"dimensions": "768"}, "models.m.dimensions: must be a positive integer"),
        ({"dimensions": True}, "models.m.dimensions: must be a positive integer"),
        ({"modality": "text->rerank", "dimensions": 768}, "models.m.dimensions: only for text->embedding models"),
        ({"modality": "text->text", "dimensions": 768}, "models.m.dimensions: only for text->embedding models"),
    ],
)
def test_bad_dimensions_name_the_key(extra: dict[str, Any], message: str) -> None:
    model = {"modality": "text->embedding", "endpoints": [{"provider": "local", "model": "e", "pricing": {"input": 1}}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(_models({**model, **extra}), env={})
    assert str(caught.value) == message
