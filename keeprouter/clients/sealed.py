"""Signed state sealed for a client to carry back: another format's signature (or redacted data),
tagged with the provider kind that issued it, as one opaque string.

A client format with no field for that state (Responses' `encrypted_content`; an Anthropic Messages
thinking signature when the state is Gemini's) carries the sealed string, and the next request
unseals it so the state is replayed only to the format that signed it.
"""

from __future__ import annotations

from keeprouter.formats.canonical import ThinkingPart

__all__ = ["is_sealed", "seal", "unseal"]

_SEAL = "kr1"  # version tag: "kr1.s.<origin>.<signature>" | "kr1.r.<origin>.<data>"


def seal(part: ThinkingPart) -> str | None:
    """Signed thinking as one opaque string; None for unsigned thinking."""
    if part.origin is None or "." in part.origin:
        return None
    if part.redacted is not None:
        return f"{_SEAL}.r.{part.origin}.{part.redacted}"
    if part.signature:
        return f"{_SEAL}.s.{part.origin}.{part.signature}"
    return None


def unseal(text: str, blob: str) -> ThinkingPart | None:
    """`seal`'s inverse (the thinking text travels beside it); None when not ours."""
    tag, kind, origin, value = ([*blob.split(".", 3), "", "", ""])[:4]
    if tag != _SEAL or not origin or not value:
        return None
    if kind == "r":
        return ThinkingPart(redacted=value, origin=origin)
    if kind == "s":
        return ThinkingPart(text=text, signature=value, origin=origin)
    return None


def is_sealed(blob: str) -> bool:
    return blob.startswith(_SEAL + ".")
