"""Offline token estimates (no tokenizer files are shipped): close to cl100k on English and code.

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

import re
from collections.abc import Callable

import orjson

from keeprouter.formats.canonical import (
    ChatRequest,
    ImagePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

IMAGE_TOKENS = 1600
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
            elif isinstance(p, ThinkingPart):
                n += count(p.text) if p.redacted is None else len(p.redacted) // 4
    return n


def quick_text(text: str) -> int:
    """O(1) estimate from the length alone (~4 characters per token in ASCII, ~1.2 otherwise)."""
    if not text:
        return 0
    return int(len(text) / (_CHARS_PER_TOKEN_LARGE if text.isascii() else 1.2)) + 1


def estimate_request(req: ChatRequest) -> int:
    """The request path's prompt estimate (context check, credit reservation): O(1) per block, since
    it only bounds what the upstream's own usage settles exactly. `count_tokens` uses count_request."""
    return count_request(req, quick_text)
