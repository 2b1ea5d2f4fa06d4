"""Mistral's Tekken tokenizer (formats.tekken): which model names use it, and that counts come from
mistral-common's shipped file, not from an OpenAI vocabulary or the estimate."""

from __future__ import annotations

import pytest

from keeprouter.formats import tekken, tokens

FRENCH = "Bonjour, je m'appelle Ministral. Qu'est-ce que tu veux savoir aujourd'hui ?"


@pytest.mark.parametrize(
    "model",
    ["ministral-14b-latest", "ministral-8b-2410", "mistral-small-latest", "mistral-medium-2508",
     "mistral-large-2411", "codestral-latest", "devstral-medium-latest", "magistral-small-latest",
     "open-mistral-nemo", "pixtral-12b-2409", "Mistral-Small-3.2-24B-Instruct-2506"],
)  # fmt: skip
def test_current_mistral_models_use_tekken(model: str) -> None:
    assert tokens.encoding_for(model) == tekken.TEKKEN


@pytest.mark.parametrize(
    "model", ["open-mistral-7b", "open-mixtral-8x22b", "mistral-large-2407", "mistral-small-2409", "mistral-tiny"]
)
def test_sentencepiece_era_models_are_estimated(model: str) -> None:
    assert tokens.encoding_for(model) is None


@pytest.fixture(scope="module")
def counter() -> tokens.Tokenizer:
    return tokens.Encodings().get(tekken.TEKKEN)


def test_tekken_counts_text_with_mistrals_vocabulary(counter: tokens.Tokenizer) -> None:
    ids = counter.encode_ordinary(FRENCH)
    assert all(i >= 1000 for i in ids)  # text ids only: the first 1,000 are Tekken's control tokens
    assert len(ids) == 20
    o200k = tokens.exact_counter(tokens.Encodings().get("o200k_base"))
    assert o200k(FRENCH) == 18  # another tokenizer, another answer


def test_control_token_text_in_user_content_is_plain_text(counter: tokens.Tokenizer) -> None:
    ids = counter.encode_ordinary("[INST] hi [/INST]")
    assert ids and all(i >= 1000 for i in ids)
