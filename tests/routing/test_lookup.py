"""routing.lookup: every name chat completions accepts for a model resolves to the same catalogue
model everywhere (the gateway, the JSON catalogue, the pages). Pure: a dict of models, no server."""

from __future__ import annotations

from typing import Any, cast

import pytest

from keeprouter.config import Config, ModelConfig, parse_config
from keeprouter.errors import NotFound
from keeprouter.formats.canonical import ChatRequest, Message, TextPart
from keeprouter.gateway import Gateway
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.lookup import Found, find_model, require_model


def _model(mid: str) -> ModelConfig:
    return ModelConfig(mid, mid, "Test", 1000, ())


MODELS = {
    m.id: m
    for m in map(
        _model,
        ["claude-haiku-4-5", "codestral-latest", "llama3:8b", "org/own-model", "x/m1", "m1", "snap-20250101"],
    )
}


def _id(name: str) -> str | None:
    found = find_model(MODELS, name)
    return None if found is None else found.model.id


@pytest.mark.parametrize(
    ("name", "expected", "variant"),
    [
        ("claude-haiku-4-5", "claude-haiku-4-5", ""),  # the canonical id itself
        ("claude-haiku-4-5:nitro", "claude-haiku-4-5", "nitro"),  # variants
        ("claude-haiku-4-5:floor", "claude-haiku-4-5", "floor"),
        ("claude-haiku-4-5:free", "claude-haiku-4-5", "free"),  # any variant: the caller decides what it means
        ("anthropic/claude-haiku-4-5", "claude-haiku-4-5", ""),  # OpenRouter's author/slug
        ("mistralai/codestral-latest", "codestral-latest", ""),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5", ""),  # Anthropic's dated snapshot
        ("anthropic/claude-haiku-4-5-20251001:nitro", "claude-haiku-4-5", "nitro"),  # all three at once
        ("a/b/claude-haiku-4-5", "claude-haiku-4-5", ""),  # the last path segment is the slug
    ],
)
def test_names_resolve_to_the_canonical_model_and_the_variant(name: str, expected: str, variant: str) -> None:
    assert find_model(MODELS, name) == Found(MODELS[expected], variant)


def test_an_id_that_contains_a_colon_or_a_slash_matches_as_sent_first() -> None:
    assert _id("llama3:8b") == "llama3:8b"
    assert _id("org/own-model") == "org/own-model"
    assert _id("x/m1") == "x/m1"  # not the `m1` its slug would name
    assert _id("x/m1:nitro") == "x/m1"  # the name without its variant comes before the slug


def test_the_variant_is_everything_after_the_first_colon() -> None:
    found = find_model(MODELS, "llama3:8b")
    assert found is not None and found.variant == "8b"  # as the gateway reads it: unknown variants do nothing
    assert find_model(MODELS, "m1:nitro:x") == Found(MODELS["m1"], "nitro:x")


def test_a_dated_id_in_the_catalogue_is_found_as_itself_and_only_eight_digits_are_a_date() -> None:
    assert _id("snap-20250101") == "snap-20250101"
    assert _id("claude-haiku-4-5-2025") is None
    assert _id("claude-haiku-4-5-202510011") is None
    assert _id("claude-haiku-4-5-20251001-x") is None


@pytest.mark.parametrize("name", ["", ":nitro", "nope", "anthropic/nope", "claude", "claude-haiku-4-5/x"])
def test_unknown_names_are_not_found(name: str) -> None:
    assert find_model(MODELS, name) is None
    with pytest.raises(NotFound) as e:
        require_model(MODELS, name)
    assert e.value.status == 404
    assert e.value.message == f"model '{name}' does not exist"


def test_require_model_returns_what_find_model_finds() -> None:
    assert require_model(MODELS, "anthropic/claude-haiku-4-5:nitro") == Found(MODELS["claude-haiku-4-5"], "nitro")


# ---- the gateway's route() and this lookup agree, name for name ----------------------------------------

NAMES = [
    "claude-sonnet-4-5-20250929", "anthropic/claude-haiku-4-5", "mistralai/codestral-latest", "claude-haiku-4-5",
    "claude-haiku-4-5:nitro", "anthropic/claude-haiku-4-5-20251001:floor", "claude-haiku-4-5-2025", "nope",
    "anthropic/nope:nitro", "codestral-latest:free",
]  # fmt: skip


def _builtin() -> Config:
    return parse_config({}, env={"ANTHROPIC_API_KEY": "k", "MISTRAL_API_KEY": "k"})


@pytest.mark.parametrize("name", NAMES)
def test_the_gateway_resolves_every_name_as_the_lookup_does(name: str) -> None:
    cfg = _builtin()
    gw = Gateway(cfg, {}, cast(Any, None), HealthTracker())
    req = ChatRequest(model=name, messages=[Message(role="user", content=[TextPart(text="x")])])
    found = find_model(cfg.models, name)
    if found is None:
        with pytest.raises(NotFound):
            gw.route({}, req)
        return
    route = gw.route({}, req)
    assert [m.id for m in route.models] == [found.model.id]
    assert route.prefs.sort == {"nitro": "throughput", "floor": "price"}.get(found.variant)


def test_built_in_catalogue_names_clients_send() -> None:
    models = _builtin().models
    for sent, expected in (
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),  # Claude Code's dated snapshot names
        ("anthropic/claude-haiku-4-5", "claude-haiku-4-5"),  # OpenRouter's author/slug
        ("mistralai/codestral-latest", "codestral-latest"),
    ):
        found = find_model(models, sent)
        assert found is not None and found.model.id == expected
