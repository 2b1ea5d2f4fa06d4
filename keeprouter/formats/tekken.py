"""Mistral's Tekken tokenizer, from the file mistral-common ships (nothing is downloaded).

Every current Mistral model (NeMo onwards: Ministral, Mistral Small 3+, Medium 3, Large 2411+,
Codestral 25xx, Devstral, Magistral, Pixtral, Voxtral) tokenizes text with Tekken, a byte-level BPE
of 131,072 ids of which the first 1,000 are control tokens. Later Tekken versions add control tokens
(tool calls, thinking, images), not text tokens, so the shipped v3 file counts their text exactly.
Older models (Mistral 7B, Mixtral, Small/Large before 2411) use SentencePiece: estimated instead.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

TEKKEN = "tekken"
_FILE = "tekken_240911.json"  # mistral-common's v3 Tekken file (vocabulary 131,072, 1,000 control ids)
_FAMILIES = re.compile(
    r"(?:ministral|mistral-(?:small|medium|large|nemo)|open-mistral-nemo|codestral|devstral|magistral"
    r"|pixtral|voxtral)\b"
)
# Dated releases of these families before Tekken (SentencePiece v1-v3).
_BEFORE_TEKKEN = re.compile(r"-(?:2312|2402|2404|2405|2407|2409)\b")


def uses_tekken(model: str) -> bool:
    """Whether an upstream model name (without any `vendor/` prefix) is a Tekken model."""
    m = model.lower()
    return bool(_FAMILIES.match(m)) and not (_BEFORE_TEKKEN.search(m) and "nemo" not in m and "pixtral" not in m)


class TekkenCounter:
    """Tekken behind the `encode_ordinary` interface the counters use (control-token text in user
    content is plain text to the tokenizer, as with tiktoken's encode_ordinary)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    def encode_ordinary(self, text: str) -> list[int]:
        ids: list[int] = self._tokenizer.encode(text, bos=False, eos=False)
        return ids


def load_tekken() -> TekkenCounter:
    """Build the Tekken tokenizer from mistral-common's shipped file (blocking: ~2 s)."""
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer  # heavy import, only when used

    path = resources.files("mistral_common").joinpath("data", _FILE)
    with resources.as_file(path) as p:
        return TekkenCounter(Tekkenizer.from_file(p))
