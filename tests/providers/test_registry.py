"""The provider-kind table: one registry row per kind in `keeprouter.kinds`, and everything that is
derived from the rows (adapters, their framing, config validation) agrees with them."""

from __future__ import annotations

import pytest
from support.fake_transport import FakeResponse, FakeTransport, endpoint, provider

from keeprouter import kinds
from keeprouter.catalogue import catalogue
from keeprouter.config import KNOWN_CAPABILITIES, ConfigError, parse_config
from keeprouter.formats.canonical import ChatRequest, Message, TextPart
from keeprouter.providers import ROWS, CountNotSupported, build_adapter, kind_of
from keeprouter.providers.transport import Transport

REQ = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="hi")])])
# A kind whose count endpoint answers in its own shape, or counts for some models only
COUNT_ANSWER = {"bedrock": {"inputTokens": 7}, "gemini": {"totalTokens": 7}}
COUNTED_MODEL = {"bedrock": "us.anthropic.claude-haiku-4-5-20251001-v1:0"}


def test_one_row_per_kind_in_the_same_order() -> None:
    assert tuple(ROWS) == kinds.names()
    for k in kinds.KINDS:
        assert ROWS[k.name].keys is k


@pytest.mark.parametrize("name", list(ROWS))
def test_build_adapter_makes_the_rows_adapter_over_a_transport_with_the_rows_framing(name: str) -> None:
    p = provider(name)
    adapter = build_adapter(p)
    assert adapter.api == name
    transport = getattr(adapter, "transport", None)
    assert isinstance(transport, Transport)
    assert transport.framing is kind_of(p).framing


@pytest.mark.parametrize("name", list(ROWS))
def test_capabilities_are_known_endpoint_capabilities(name: str) -> None:
    assert ROWS[name].capabilities <= KNOWN_CAPABILITIES


def test_built_in_endpoints_ask_only_what_their_kind_can_carry() -> None:
    apis = {pid: row["api"] for pid, row in catalogue.builtin_providers().items()}
    for mid, model in catalogue.builtin_models().items():
        for ep in model["endpoints"]:
            caps = set(ep.get("capabilities", ["streaming"]))
            assert caps <= ROWS[apis[ep["provider"]]].capabilities, (mid, ep["provider"])


@pytest.mark.parametrize("name", [n for n, row in ROWS.items() if not row.counts_tokens])
async def test_a_kind_without_a_count_endpoint_says_so_without_a_request(name: str) -> None:
    transport = FakeTransport(provider(name), lambda req: pytest.fail("no request expected"))
    with pytest.raises(CountNotSupported):
        await build_adapter(transport.provider, transport).count_tokens(REQ, endpoint(transport.provider), {})


@pytest.mark.parametrize("name", [n for n, row in ROWS.items() if row.counts_tokens])
async def test_a_kind_with_a_count_endpoint_asks_it(name: str) -> None:
    answer = COUNT_ANSWER.get(name, {"input_tokens": 7})
    transport = FakeTransport(provider(name), lambda req: FakeResponse.json(answer))
    ep = endpoint(transport.provider, COUNTED_MODEL.get(name, "m-1"))
    assert await build_adapter(transport.provider, transport).count_tokens(REQ, ep, {}) == 7
    assert len(transport.requests) == 1


def test_config_accepts_exactly_the_registry_kinds() -> None:
    for name in ROWS:
        required = {k: "x" for k in ROWS[name].keys.required}
        cfg = parse_config({"providers": {"p": {"api": name, "base_url": "http://x", **required}}}, env={})
        assert cfg.providers["p"].api == name
    with pytest.raises(ConfigError) as info:
        parse_config({"providers": {"p": {"api": "grpc", "base_url": "http://x"}}}, env={})
    assert str(info.value) == f"providers.p.api: must be one of {', '.join(ROWS)}, got 'grpc'"
