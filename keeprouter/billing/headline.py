"""The headline price rule, pure: which endpoint's prices a model is quoted at, wherever one price
stands for the whole model (the JSON catalogue's `pricing` and `top_provider`, the model pages,
the models table, the guides).

The rule: the cheapest routable endpoint (input + output price per 1M tokens), else the cheapest
hosted endpoint the catalogue lists without a key here (a model not served here still shows what it
would cost), else the cheapest listed endpoint of any kind. A local host's $0 is therefore quoted
only where that host is configured, or is all there is. Ties go to the provider id that sorts first,
so the quote does not depend on the order of the config file.
"""

from __future__ import annotations

from decimal import Decimal

from keeprouter.config import EndpointConfig, ModelConfig


def endpoint_price(ep: EndpointConfig) -> Decimal:
    """What the headline compares: input + output USD per 1M tokens at the base tier."""
    return ep.pricing.input + ep.pricing.output


def headline(model: ModelConfig) -> EndpointConfig | None:
    """The endpoint `model` is quoted at (see the module docstring), or None when it lists none."""
    hosted = [e for e in model.unconfigured if e.pricing.source != "local"]
    pool = model.endpoints or hosted or model.unconfigured
    return min(pool, key=lambda e: (endpoint_price(e), e.provider), default=None)
