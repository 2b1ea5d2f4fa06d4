"""The affinity rule, pure: where the remembered endpoint goes in the order of candidates."""

from __future__ import annotations

from collections.abc import Callable

from keeprouter.routing.select import Candidate


def prefer(cands: list[Candidate], remembered: str | None, healthy: Callable[[str], bool]) -> list[Candidate]:
    """`cands` (already ordered by the caller's provider preferences and the price balance) with the
    endpoint that served the conversation's last turn moved first among its model's endpoints, when
    it is still a candidate (so the request's preferences allow it) and `healthy`. The caller's
    model order is kept: a conversation that fell back to a second model goes back to the first.
    Otherwise `cands` is returned as is: a new conversation is balanced as before, and one whose
    endpoint failed moves on (and the table then remembers where it went)."""
    if remembered is None or not healthy(remembered):
        return cands
    at = next((i for i, c in enumerate(cands) if c.key == remembered), None)
    if at is None:
        return cands
    model = cands[at].model.id
    first = next(i for i, c in enumerate(cands) if c.model.id == model)
    if first == at:
        return cands
    return [*cands[:first], cands[at], *cands[first:at], *cands[at + 1 :]]
