"""The shipped catalogue's data hygiene: every price says where it was read and when, every endpoint
names a shipped provider, local hosts cost nothing, and the same model is offered by several hosts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from keeprouter import kinds
from keeprouter.catalogue import catalogue
from keeprouter.config import KNOWN_CAPABILITIES

PROVIDERS = catalogue.builtin_providers()
MODELS = catalogue.builtin_models()
ENDPOINTS = [(mid, i, ep) for mid, m in MODELS.items() for i, ep in enumerate(m["endpoints"])]


def _is_money(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v >= 0


@pytest.mark.parametrize(("pid", "row"), PROVIDERS.items(), ids=list(PROVIDERS))
def test_provider_row_is_complete(pid: str, row: dict[str, Any]) -> None:
    assert row.get("name"), pid
    kind = kinds.kind_named(row["api"])
    assert kind is not None, pid
    if "base_url" in row or kind.default_base_url is None:  # else the kind derives it (Bedrock: the region)
        assert row["base_url"].startswith(("https://", "http://127.0.0.1"))
    # a switch turns a built-in provider on: its key, (keyless local hosts) its URL, both (Azure: the
    # key and the resource's endpoint), credentials the kind finds itself (AWS's chain), or several
    # variables together (Vertex: a service account and its project)
    switches = ("api_key_env", "base_url_env", "enabled_by_env", "requires_env")
    assert any(row.get(k) for k in switches), pid


def _local(provider: dict[str, Any]) -> bool:
    """A keyless self-hosted server, switched on by its URL alone."""
    return bool(provider.get("base_url_env")) and not provider.get("api_key_env")


@pytest.mark.parametrize(("mid", "i", "ep"), ENDPOINTS, ids=[f"{m}[{i}]" for m, i, _ in ENDPOINTS])
def test_every_price_has_a_source_and_a_date(mid: str, i: int, ep: dict[str, Any]) -> None:
    provider = PROVIDERS[ep["provider"]]
    price = ep["pricing"]
    assert all(_is_money(price[k]) for k in ("input", "output", "cache_read", "cache_write") if k in price)
    assert all(_is_money(v) for tier in price.get("tiers", []) for v in tier.values())
    assert isinstance(price["as_of"], dt.date)
    if _local(provider):  # a self-hosted server bills nothing per token
        assert price["source"] == "local" and price["input"] == price.get("output", 0) == 0  # no output: embeddings
    else:
        assert price["source"].startswith("https://")
    assert set(ep.get("capabilities", [])) <= KNOWN_CAPABILITIES


def test_models_carry_a_description_and_a_real_release_date() -> None:
    for mid, m in MODELS.items():
        assert m.get("description") and m.get("maker"), mid
        created = m.get("created")
        assert created is None or dt.date(2023, 1, 1) <= created <= dt.date.today(), mid


def test_several_models_are_served_by_several_hosts() -> None:
    multi = {mid for mid, m in MODELS.items() if len({ep["provider"] for ep in m["endpoints"]}) >= 3}
    assert {"gpt-oss-120b", "gpt-oss-20b", "deepseek-v4-pro"} <= multi
