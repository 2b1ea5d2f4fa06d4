"""The `:thinking` variant turns reasoning on (OpenRouter's), keeping what else the caller asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from keeprouter.billing.ledger import Ledger
from keeprouter.config import parse_config
from keeprouter.formats.canonical import ChatRequest, Message, Reasoning, TextPart
from keeprouter.gateway import Gateway
from keeprouter.routing.health import HealthTracker
from keeprouter.store import Store, open_store


@pytest_asyncio.fixture(name="gw")
async def gw_fixture(tmp_path: Path) -> AsyncIterator[Gateway]:
    store: Store = await open_store(f"sqlite:///{tmp_path / 'kr.db'}")
    raw = {
        "providers": {"a": {"api": "openai", "base_url": "http://127.0.0.1:9", "api_key": "k"}},
        "models": {"m": {"endpoints": [{"provider": "a", "model": "up", "pricing": {"input": 1, "output": 1}}]}},
    }
    yield Gateway(parse_config(raw, env={}), {}, Ledger(store), HealthTracker())
    await store.close()


def _req(model: str, reasoning: Reasoning | None = None) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message(role="user", content=[TextPart(text="q")])], reasoning=reasoning)


@pytest.mark.asyncio
async def test_thinking_variant_turns_reasoning_on(gw: Gateway) -> None:
    req = _req("m:thinking")
    assert [m.id for m in gw.route({}, req).models] == ["m"]
    assert req.reasoning == Reasoning()
    hidden = _req("m:thinking", Reasoning(enabled=False, exclude=True))  # include_reasoning: false
    gw.route({}, hidden)
    assert hidden.reasoning == Reasoning(exclude=True)
    chosen = _req("m:thinking", Reasoning(effort="high"))
    gw.route({}, chosen)
    assert chosen.reasoning == Reasoning(effort="high")  # the caller's own setting wins
    plain = _req("m")
    gw.route({}, plain)
    assert plain.reasoning is None
