"""Imported entries written into a config file as text: the operator's file (comments, order,
`${VAR}`s, hand-edited entries) stays byte for byte, new models and a new provider are added to
their blocks, and unpriced models are written commented out, once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml

from keeprouter.catalogue.merge import UNPRICED_NOTE, merge

DAY = dt.date(2026, 12, 7)


def _model(mid: str, price: float | None) -> dict[str, Any]:
    pricing = {"input": price, "output": price, "source": "https://x/models", "as_of": DAY}
    return {"name": mid, "endpoints": [{"provider": "router", "model": mid, "pricing": pricing}]}


HAND = """\
# my router
database: sqlite:///kr.db
providers:
  router:                       # the router I pay
    api: openai
    base_url: https://router.example/v1
    api_key: ${ROUTER_KEY}

models:
  # tuned by hand: cheaper contract price
  vendor/hand-tuned:
    name: Hand tuned
    endpoints:
      - {provider: router, model: vendor/hand-tuned, pricing: {input: 0.5, output: 1}}

site:
  name: Mine
"""


def test_new_models_go_into_the_existing_block_and_the_file_is_otherwise_unchanged() -> None:
    priced = {"vendor/hand-tuned": _model("vendor/hand-tuned", 9.0), "vendor/new": _model("vendor/new", 2.0)}
    out = merge(HAND, priced, {}, provider=("router", {"api": "openai", "base_url": "https://other"}))
    assert out.added == ["vendor/new"] and out.kept == ["vendor/hand-tuned"]
    # everything the operator wrote is still there, in order, comments included
    assert out.text.startswith(HAND.split("\nsite:")[0])
    assert out.text.endswith("\nsite:\n  name: Mine\n")
    loaded = yaml.safe_load(out.text)
    assert loaded["models"]["vendor/hand-tuned"]["endpoints"][0]["pricing"] == {"input": 0.5, "output": 1}
    assert loaded["models"]["vendor/new"] == _model("vendor/new", 2.0)
    assert loaded["providers"]["router"]["base_url"] == "https://router.example/v1"  # never rewritten
    assert loaded["site"] == {"name": "Mine"}


def test_a_missing_provider_and_models_block_are_created() -> None:
    router = {"api": "openai", "base_url": "https://r/v1", "api_key": "${ROUTER_API_KEY}"}
    out = merge("database: sqlite:///kr.db\n", {"a/b": _model("a/b", 1.0)}, {}, provider=("router", router))
    loaded = yaml.safe_load(out.text)
    assert loaded["database"] == "sqlite:///kr.db"
    assert loaded["providers"] == {"router": router}
    assert list(loaded["models"]) == ["a/b"]


def test_an_empty_flow_block_is_opened_and_a_full_one_is_refused() -> None:
    out = merge("models: {}\n", {"a/b": _model("a/b", 1.0)}, {})
    assert list(yaml.safe_load(out.text)["models"]) == ["a/b"]
    with pytest.raises(ValueError, match="flow style"):
        merge("models: {x: {name: X}}\n", {"a/b": _model("a/b", 1.0)}, {})


def test_unpriced_models_are_commented_out_under_a_note_and_not_written_twice() -> None:
    new = merge(None, {"a/priced": _model("a/priced", 1.0)}, {"a/unpriced": _model("a/unpriced", None)},
                header="Imported from https://x/models on 2026-12-07.")  # fmt: skip
    assert new.text.startswith("# Imported from https://x/models on 2026-12-07.\n")
    assert new.unpriced == ["a/unpriced"] and all(line in new.text for line in UNPRICED_NOTE.splitlines())
    assert list(yaml.safe_load(new.text)["models"]) == ["a/priced"]  # loads without the unpriced one
    # uncommented, the block is a model whose prices are to fill in
    opened = "\n".join(line.replace("# ", "", 1) if "#   " in line or "# a/unpriced" in line else line
                       for line in new.text.splitlines())  # fmt: skip
    assert yaml.safe_load(opened)["models"]["a/unpriced"]["endpoints"][0]["pricing"]["input"] is None
    again = merge(new.text, {}, {"a/unpriced": _model("a/unpriced", None)})
    assert again.unpriced == [] and again.text == new.text


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ValueError, match="not a YAML mapping"):
        merge("- a\n- b\n", {"a/b": _model("a/b", 1.0)}, {})
