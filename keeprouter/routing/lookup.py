"""Model lookup, pure: the one answer to "which catalogue model does this name mean?".

Chat completions, the JSON catalogue (`/v1/models/{id}`, `/api/v1/models/{id}/endpoints`, uptime) and
the model pages all resolve a client's model name here, so any name one of them accepts, the others
accept too. Tried in order, first match wins:

1. the name exactly as sent (a configured id may itself contain ':' or '/');
2. the name without its `:variant` suffix (`claude-haiku-4-5:nitro`; the text after the FIRST ':' is
   the variant, whatever it says: the caller decides which variants mean something);
3. its last path segment, OpenRouter's `author/slug` (`anthropic/claude-haiku-4-5`);
4. that segment without a trailing `-YYYYMMDD` date, Anthropic's dated snapshots
   (`claude-haiku-4-5-20251001`, as Claude Code sends them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from keeprouter.config import ModelConfig
from keeprouter.errors import NotFound

_DATE_SUFFIX = re.compile(r"-\d{8}$")


class Found(NamedTuple):
    """A name resolved: the canonical catalogue model and the variant sent with it ("" for none)."""

    model: ModelConfig
    variant: str


def find_model(models: Mapping[str, ModelConfig], name: str) -> Found | None:
    """The catalogue model `name` means (see the module docstring for the order), or None."""
    base, _, variant = name.partition(":")
    model = models.get(name)  # the usual case, before the other forms are worked out
    if model is not None:
        return Found(model, variant)
    slug = base.rpartition("/")[2]
    for candidate in (base, slug, _DATE_SUFFIX.sub("", slug)):
        model = models.get(candidate)
        if model is not None:
            return Found(model, variant)
    return None


def require_model(models: Mapping[str, ModelConfig], name: str) -> Found:
    """`find_model`, or NotFound (404, "model '<name>' does not exist") for a name nothing matches."""
    found = find_model(models, name)
    if found is None:
        raise NotFound(f"model '{name}' does not exist")
    return found
