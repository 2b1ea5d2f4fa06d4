"""One gateway and one emulator per upstream kind, shared by every scenario of a test module.

Each upstream kind gets its own gateway model (``via-<kind>``) with a single endpoint on its emulator.
Before each test every emulator's script is emptied and its record marked, so a scenario reads only
the requests it caused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url
from support.raw import get_json, wait_until
from upstreams.base import EmulatedUpstream, Received
from upstreams.script import Item

from keeprouter.config import Pricing
from scenarios.client_api import ClientApi, Closable
from scenarios.neutral import Ask, Result, Sent
from scenarios.rows import UPSTREAM_KINDS, Case
from scenarios.upstream_kinds import UpstreamKind

PRICING = {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}
CAPABILITIES = ["streaming", "tools", "vision", "reasoning", "response_format"]
ACROSS_REASONING = "across-reasoning"  # a model served by every reasoning kind's emulator
NO_REASONING = "no-reasoning"  # a model on the first upstream kind's emulator, without the reasoning capability


def across(a: str, b: str) -> str:
    """The model served by the reasoning kinds `a` and `b` only (either order)."""
    return "across-" + "-".join(sorted((a, b)))


@dataclass
class Lane:
    """One upstream kind's emulator, as the scenarios see it."""

    kind: UpstreamKind
    emulator: EmulatedUpstream
    model: str  # the gateway model served by this emulator only
    first: int = 0  # index of the first request the current test caused

    def reset(self) -> None:
        while self.emulator.pending:
            self.emulator.next_item()
        self.first = len(self.emulator.requests)

    def script(self, *items: Item) -> None:
        self.emulator.script(*items)

    def generations(self) -> list[Received]:
        """The generation requests this test caused, oldest first."""
        got = self.emulator.requests[self.first :]
        return [r for r in got if r.path in self.kind.generation_paths and isinstance(r.body, dict)]

    def sent(self, index: int = -1) -> Sent:
        """A generation request as the upstream received it (default: the last)."""
        reqs = self.generations()
        assert reqs, "the upstream received nothing"
        return self.kind.read(reqs[index])


@dataclass
class World:
    gw: RunningGateway
    lanes: dict[str, Lane]
    clients: dict[tuple[str, str], Closable] = field(default_factory=dict)  # (API, key) -> SDK client

    def lane(self, case: Case) -> Lane:
        return self.lanes[case.kind.name]

    async def send(self, case: Case, ask: Ask) -> Result:
        """``ask`` through the case's client API to the model its upstream kind serves."""
        return await self.send_as(case.api, case.stream, ask, self.lane(case).model)

    async def send_as(self, api: ClientApi, stream: bool, ask: Ask, model: str, key: str | None = None) -> Result:
        key = key or self.gw.admin_key
        client = self.clients.get((api.name, key))
        if client is None:
            client = self.clients[api.name, key] = api.connect(self.gw.url, key)
        return await api.send(client, model, ask, stream)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()

    def pricing(self, case: Case) -> Pricing:
        return self.gw.config.models[self.lane(case).model].endpoints[0].pricing

    async def generation(self, generation_id: str) -> dict[str, Any]:
        """The gateway's record of a generation (written just after the answer, off the request path)."""
        url = f"{self.gw.url}/api/v1/generation?id={generation_id}"
        async with aiohttp.ClientSession() as s:

            async def recorded() -> dict[str, Any] | None:
                status, body = await get_json(s, url, self.gw.admin_key)
                return body.get("data", body) if status == 200 else None

            got: dict[str, Any] = await wait_until(recorded, 10.0)
            return got


def gateway_config(emulators: dict[str, EmulatedUpstream], database: str) -> dict[str, Any]:
    """A provider per upstream kind (its row's block) and a model per kind served by it alone."""
    models = {
        f"via-{k.name}": {
            "name": f"Via {k.name}",
            "maker": "Test",
            "context_length": 200000,
            "endpoints": [
                {"provider": k.name, "model": k.upstream_model, "pricing": PRICING, "capabilities": CAPABILITIES}
            ],
        }
        for k in UPSTREAM_KINDS
    }
    # the first kind's upstream again, for a model that does not reason
    first = UPSTREAM_KINDS[0]
    models[NO_REASONING] = {
        "name": "No reasoning",
        "maker": "Test",
        "context_length": 200000,
        "endpoints": [
            {"provider": first.name, "model": first.upstream_model, "pricing": PRICING,
             "capabilities": [c for c in CAPABILITIES if c != "reasoning"]}
        ],
    }  # fmt: skip
    # one model on every upstream kind that reasons: a conversation may move between them; and one
    # per pair of them, so a conversation moved from one to the other meets no third
    reasoning = [k for k in UPSTREAM_KINDS if k.reasons]

    def across_model(name: str, kinds: list[UpstreamKind]) -> dict[str, Any]:
        endpoints = [
            {"provider": k.name, "model": k.upstream_model, "pricing": PRICING, "capabilities": CAPABILITIES}
            for k in kinds
        ]
        return {"name": name, "maker": "Test", "context_length": 200000, "endpoints": endpoints}

    models[ACROSS_REASONING] = across_model("Across reasoning upstreams", reasoning)
    for i, a in enumerate(reasoning):
        for b in reasoning[i + 1 :]:
            models[across(a.name, b.name)] = across_model(f"Across {a.name} and {b.name}", [a, b])
    providers = {k.name: k.provider(emulators[k.name]) for k in UPSTREAM_KINDS}
    return {"database": database, "admin_key": ADMIN_KEY, "providers": providers, "models": models}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    with pytest.MonkeyPatch.context() as env:
        # refused settles spool in a directory of this module's own (tests/conftest.py does the
        # same per test, but this gateway outlives a test)
        env.setenv("KEEPROUTER_SPOOL_DIR", str(tmp_path_factory.mktemp("spool")))
        # Scenarios script failures on purpose, case after case, on one long-lived gateway: circuits
        # must not carry one case's failures into the next (routing.health has tests of its own).
        env.setenv("KEEPROUTER_CIRCUIT_COOLDOWN_SECONDS", "0.001")
        async with AsyncExitStack() as stack:
            emulators = {k.name: await stack.enter_async_context(k.emulator()) for k in UPSTREAM_KINDS}
            cfg = gateway_config(emulators, sqlite_url(tmp_path_factory.mktemp("db")))
            gw = await stack.enter_async_context(run_gateway(cfg))
            lanes = {k.name: Lane(k, emulators[k.name], f"via-{k.name}") for k in UPSTREAM_KINDS}
            world = World(gw, lanes)
            stack.push_async_callback(world.close)
            yield world


@pytest.fixture(autouse=True)
def _fresh_lanes(world: World) -> None:
    for lane in world.lanes.values():
        lane.reset()
