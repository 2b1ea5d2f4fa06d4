"""Token counts, offline: exact for OpenAI-family models (tiktoken, with its vocabularies shipped in
the package) and current Mistral models (Tekken, from the file mistral-common ships: formats.tekken),
estimates elsewhere and wherever an estimate suffices.

`Encodings` builds tiktoken's o200k_base / cl100k_base from `formats/vocab/*.tiktoken` (provenance in
vocab/SOURCES.md), checking each file's published sha256 before use; nothing is downloaded. Loading
one takes about a second, so it happens on first use and never on the request path: `count_tokens`
loads in a worker thread, usage-less upstreams are counted exactly once an encoding is loaded.
Which encoding a model uses is tiktoken's own table (`encoding_name_for_model`).

The estimate is close to cl100k on English and code.

`count_text` splits text the way cl100k's pre-tokenizer does (words with their leading space, digit
runs of up to 3, punctuation runs, whitespace runs, one piece per CJK character), counts one token
per piece and adds tokens for long pieces: ASCII words longer than 9 letters (+1 per further 4),
words in other alphabetic scripts (about 3 characters per token) and punctuation runs longer than 3
characters (+1 per further 3). Deterministic and C-speed for the common case (one `findall` plus
scans that only match long pieces).

`count_request` counts every block a request carries (decolua/9router#2337: count_tokens must count
tool_use/tool_result too), plus fixed overheads: 3 per request, 4 per message, 8 per tool-call or
tool-result block, 8 per tool schema, `IMAGE_TOKENS` per image (Anthropic's estimate for an image
scaled to ~1.15 megapixels, its size cap), and `TOOLS_PREAMBLE` once when tools are declared
(Anthropic adds a tool-use system prompt of ~300 tokens). Estimates err slightly high rather than low:
an underestimate makes clients compact too late (ericc-ch/copilot-api#210).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Callable
from importlib import resources
from typing import Protocol

import orjson
import tiktoken
import tiktoken.model

from keeprouter.formats import tekken
from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

IMAGE_TOKENS = 1600
# A document that is not text is read as pages (text plus an image each, ~1.5-3k tokens a page);
# its size is the only hint offline: at least one page, then one token per 32 base64 characters.
DOCUMENT_TOKENS = 1600
_DOCUMENT_CHARS_PER_TOKEN = 32
TOOLS_PREAMBLE = 300
_PER_REQUEST = 3
_PER_MESSAGE = 4
_PER_BLOCK = 8
_PER_TOOL = 8

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_PIECES = re.compile(
    r"'(?:[sdmtSDMT]|ll|ve|re)"
    r"| ?[A-Za-z]+"
    r"| ?[0-9]{1,3}"
    rf"|[{_CJK}]"
    rf"| ?[^\W\d_A-Za-z{_CJK}]+"
    r"| ?[^\w\s]+|_+"
    r"|\s+"
)
_LONG_ASCII = re.compile(r"[A-Za-z]{10,}")
_OTHER_WORD = re.compile(rf"[^\W\d_A-Za-z{_CJK}]{{4,}}")
_LONG_PUNCT = re.compile(r"[^\w\s]{4,}")


LARGE_TEXT = 768  # characters; above this a length ratio is about as good as the regex, and O(1)
_CHARS_PER_TOKEN_LARGE = 4.0  # cl100k averages ~4.5 on English prose, ~3.5 on code
_CHARS_PER_TOKEN_OTHER = 1.2  # CJK runs near a token per character; other scripts 1.5-3


def count_text(text: str) -> int:
    """Estimated tokens in `text`."""
    if not text:
        return 0
    if len(text) > LARGE_TEXT:
        # Agent contexts run to hundreds of KB per request: O(1) per block above this size.
        return quick_text(text)
    n = len(_PIECES.findall(text))
    if len(text) >= 4:
        for m in _LONG_ASCII.finditer(text):
            n += (m.end() - m.start() - 6) // 4
        if not text.isascii():
            for m in _OTHER_WORD.finditer(text):
                n += (m.end() - m.start() - 1) // 3
        for m in _LONG_PUNCT.finditer(text):
            n += (m.end() - m.start() - 1) // 3
    return n


def count_output(parts_text: str) -> int:
    """Estimated output tokens of streamed text, for upstreams that report no usage."""
    return count_text(parts_text)


def count_request(req: ChatRequest, count: Callable[[str], int] = count_text) -> int:
    """Estimated input tokens of a whole request: system, tools, and every message block."""
    n = _PER_REQUEST
    for s in req.system:
        n += count(s.text)
    if req.tools:
        n += TOOLS_PREAMBLE
        for t in req.tools:
            n += _PER_TOOL + count(t.name)
            if t.description:
                n += count(t.description)
            if t.parameters:
                n += count(orjson.dumps(t.parameters).decode())
    for m in req.messages:
        n += _PER_MESSAGE
        for p in m.content:
            if isinstance(p, TextPart):
                n += count(p.text)
            elif isinstance(p, ToolCallPart):
                n += _PER_BLOCK + count(p.name) + count(p.arguments)
            elif isinstance(p, ToolResultPart):
                n += _PER_BLOCK
                for c in p.content:
                    n += count(c.text) if isinstance(c, TextPart) else IMAGE_TOKENS
            elif isinstance(p, ImagePart):
                n += IMAGE_TOKENS
            elif isinstance(p, DocumentPart):
                n += (
                    count(p.text)
                    if p.text is not None
                    else max(DOCUMENT_TOKENS, len(p.data or "") // _DOCUMENT_CHARS_PER_TOKEN)
                )
            elif isinstance(p, ThinkingPart):
                n += count(p.text) if p.redacted is None else len(p.redacted) // 4
    return n


def quick_text(text: str) -> int:
    """Estimate from lengths alone: ~4 characters per token in ASCII, ~1.2 for every other character.

    The ratio is per character, not per text: Claude Code's prompts are English with a few em dashes
    and arrows, and pricing a whole 9 KB block at 1.2 characters a token (because one character was
    not ASCII) made a 11k-token request look like 36k, too long for a 32k model."""
    if not text:
        return 0
    n = len(text)
    if text.isascii():
        return int(n / _CHARS_PER_TOKEN_LARGE) + 1
    other = n - len(text.encode("ascii", "ignore"))  # one C pass; only texts that are not ASCII pay it
    return int((n - other) / _CHARS_PER_TOKEN_LARGE + other / _CHARS_PER_TOKEN_OTHER) + 1


def estimate_request(req: ChatRequest) -> int:
    """The request path's prompt estimate (context check, credit reservation): O(1) per block, since
    it only bounds what the upstream's own usage settles exactly. `count_tokens` uses count_request."""
    return count_request(req, quick_text)


# tiktoken's published sha256 of each vocabulary file (tiktoken_ext/openai_public.py `expected_hash`)
VOCABULARY_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
# The encodings' pre-tokenizer patterns and special tokens, as OpenAI defines them: with the ranks
# these make the tokenization exact.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_SHAPES: dict[str, tuple[str, dict[str, int]]] = {
    "cl100k_base": (
        _CL100K_PATTERN,
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
    ),
    "o200k_base": (_O200K_PATTERN, {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
}  # fmt: skip


class VocabularyError(RuntimeError):
    """A shipped vocabulary file is missing or does not match its published sha256."""


class Tokenizer(Protocol):
    """What the exact counters need of a tokenizer: tiktoken's Encoding, or formats.tekken's."""

    def encode_ordinary(self, text: str) -> list[int]: ...


def load_encoding(name: str) -> Tokenizer:
    """Build encoding `name` from the vocabulary shipped in the package, or Mistral's Tekken from
    mistral-common's (blocking: 1-2 s)."""
    if name == tekken.TEKKEN:
        return tekken.load_tekken()
    return encoding_from(name, resources.files("keeprouter.formats").joinpath("vocab", f"{name}.tiktoken").read_bytes())


def encoding_from(name: str, data: bytes) -> tiktoken.Encoding:
    """Encoding `name` from its vocabulary file's bytes, refused unless they have the published sha256."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != VOCABULARY_SHA256[name]:
        raise VocabularyError(f"vocab/{name}.tiktoken has sha256 {digest}, not the published one")
    ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in data.splitlines() if line)}
    pattern, special = _SHAPES[name]
    return tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)


def encoding_for(model: str) -> str | None:
    """The shipped encoding an (upstream) model name uses: Tekken for current Mistral models, else
    by tiktoken's table; None when unknown."""
    if tekken.uses_tekken(model):
        return tekken.TEKKEN
    try:
        name = tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return None
    return name if name in VOCABULARY_SHA256 else None


class Encodings:
    """The shipped encodings, each loaded once on first `get` (thread-safe; blocking, so callers on
    the event loop use a worker thread) and then shared."""

    def __init__(self) -> None:
        self._loaded: dict[str, Tokenizer] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Tokenizer:
        enc = self._loaded.get(name)
        if enc is None:
            with self._lock:
                enc = self._loaded.get(name)
                if enc is None:
                    enc = self._loaded[name] = load_encoding(name)
        return enc

    def loaded(self, name: str) -> Tokenizer | None:
        """The encoding if it is already loaded (never loads)."""
        return self._loaded.get(name)


def exact_counter(enc: Tokenizer) -> Callable[[str], int]:
    """A `count` for `count_request`: the exact token count of each text (special-token text is
    counted as plain text, as a tokenizer sees user content)."""

    def count(text: str) -> int:
        return len(enc.encode_ordinary(text)) if text else 0

    return count
