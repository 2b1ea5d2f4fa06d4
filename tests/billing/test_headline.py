"""billing.headline: the one rule for the price a model is quoted at, used by the JSON catalogue and
the pages alike."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal as D

from keeprouter.api.catalogue import model_json, per_token
from keeprouter.billing.headline import endpoint_price, headline
from keeprouter.config import EndpointConfig, ModelConfig, Pricing, Timeouts, parse_config
from keeprouter.web.format import per_million
from keeprouter.web.pages import model as model_page
from keeprouter.web.pages.common import Site

SITE = Site("KeepRouter", "https://router.example", dt.date(2026, 1, 1))


def ep(provider: str, inp: str, out: str, source: str | None = None) -> EndpointConfig:
    return EndpointConfig(provider, f"up-{provider}", Pricing(D(inp), D(out), source=source), frozenset(), 1000, None,
                          Timeouts())  # fmt: skip


def model(endpoints: tuple[EndpointConfig, ...] = (), unconfigured: tuple[EndpointConfig, ...] = ()) -> ModelConfig:
    return ModelConfig("m", "M", "Test", 1000, endpoints, unconfigured=unconfigured)


def test_the_price_compared_is_input_plus_output() -> None:
    assert endpoint_price(ep("a", "0.15", "0.6")) == D("0.75")


def test_the_cheapest_routable_endpoint_by_input_plus_output() -> None:
    cheap_in, cheap_sum = ep("a", "0.1", "9"), ep("b", "2", "3")
    assert headline(model((cheap_in, cheap_sum))) is cheap_sum


def test_routable_endpoints_win_over_cheaper_ones_without_a_key_here() -> None:
    served = ep("served", "5", "5")
    assert headline(model((served,), (ep("hosted", "1", "1"), ep("local", "0", "0", "local")))) is served


def test_without_a_routable_endpoint_the_cheapest_hosted_one_not_a_local_zero() -> None:
    hosted = ep("hosted", "1", "1")
    assert headline(model((), (ep("local", "0", "0", "local"), hosted, ep("dear", "9", "9")))) is hosted


def test_a_local_host_is_quoted_when_it_is_all_there_is() -> None:
    local = ep("local", "0", "0", "local")
    assert headline(model((), (local,))) is local


def test_ties_go_to_the_provider_that_sorts_first_whatever_the_config_order() -> None:
    a, b = ep("a", "1", "1"), ep("b", "1", "1")
    assert headline(model((b, a))) is a
    assert headline(model((a, b))) is a
    assert headline(model((), (b, a))) is a


def test_a_model_without_endpoints_has_no_headline() -> None:
    assert headline(model()) is None


def test_the_json_catalogue_and_the_model_page_quote_the_same_endpoint() -> None:
    """Before, the catalogue broke ties by config order and quoted a model not served here at $0."""
    a, b = ep("a", "1", "2"), ep("b", "1", "2")
    tie = model((b, replace(a, context_length=500)))
    assert model_json(tie)["top_provider"]["context_length"] == 500  # endpoint `a`, though `b` is listed first
    cfg = parse_config({}, env={})
    unserved = next(m for m in cfg.models.values() if not m.endpoints and (top := headline(m)) and top.pricing.input)
    top = headline(unserved)
    assert top is not None
    assert model_json(unserved)["pricing"]["prompt"] == per_token(top.pricing.input) != "0"
    page = model_page.build(cfg, SITE, unserved, {}, [], [], [])
    assert dict(page.specs.rows)["Input price"] == per_million(top.pricing.input)
