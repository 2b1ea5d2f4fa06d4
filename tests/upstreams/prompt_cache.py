"""Provider-side prompt caching, emulated per endpoint: what a request reads from and writes to the
endpoint's cache, reported in the reply's usage the way the provider reports it.

Written from the providers' documented behaviour, not from keeprouter:

- `AnthropicCache` (explicit breakpoints): the prompt is the sequence of blocks tools, system,
  messages; a block carrying `cache_control` is a breakpoint. At most 4 breakpoints (more: a 400), a
  1-hour breakpoint may not follow a shorter one (a 400). A breakpoint whose prefix is shorter than
  `min_tokens` caches nothing. A request reads the longest cached prefix ending at a breakpoint or
  at one of the 20 blocks before it, and writes every breakpoint prefix beyond that: the tokens up
  to a 1-hour breakpoint are 1-hour writes, the rest 5-minute ones. An entry lives `ttl` after its
  last write or read (5 minutes, or 1 hour).
- `PrefixCache` (OpenAI-format automatic caching): prompts of at least 1,024 tokens are cached in
  128-token steps; a request reads the longest step-aligned prefix seen before on this endpoint
  (scoped by `prompt_cache_key` when given). Writes are free and not reported. 5 minutes idle.

Tokens are the emulators' deterministic count: compact JSON length // 4. `cache_control` is never
part of what is hashed (marking a block does not change the prompt). Time is `clock()`, so a test can
age entries without sleeping.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .script import Reply

SHORT = 300.0
LONG = 3600.0
LOOKBACK = 20  # blocks before a breakpoint that are also checked for a hit
MAX_BREAKPOINTS = 4


class PromptCache(Protocol):
    history: list[Counts]

    def apply(self, reply: Reply, body: dict[str, Any]) -> Reply:
        """`reply` with the usage this request's caching gives (CacheRejected: the provider's 400)."""
        ...


class CacheRejected(Exception):
    """The request breaks the provider's caching rules; the upstream answers 400 with this message."""


@dataclass(frozen=True)
class Counts:
    """One request's prompt: uncached tokens, cache reads, 5-minute and 1-hour writes."""

    uncached: int
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def total(self) -> int:
        return self.uncached + self.read + self.write_5m + self.write_1h

    def into(self, reply: Reply) -> Reply:
        return replace(
            reply,
            input_tokens=self.uncached,
            cache_read=self.read,
            cache_write=self.write_5m + self.write_1h,
            cache_write_1h=self.write_1h,
        )


def _tokens(obj: Any) -> int:
    return max(1, len(json.dumps(obj, separators=(",", ":"), sort_keys=True)) // 4)


def _strip(block: Any) -> Any:
    return {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block


class AnthropicCache:
    def __init__(self, *, min_tokens: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_tokens = min_tokens
        self.clock = clock
        self.entries: dict[str, tuple[float, float]] = {}  # prefix digest -> (expiry, ttl)
        self.history: list[Counts] = []

    def account(self, body: dict[str, Any]) -> Counts:
        blocks = _anthropic_blocks(body)
        marks = [i for i, (_, _, cc) in enumerate(blocks) if cc is not None]
        if len(marks) > MAX_BREAKPOINTS:
            raise CacheRejected(
                f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(marks)}."
            )
        ttls = [LONG if blocks[i][2].get("ttl") == "1h" else SHORT for i in marks]  # type: ignore[union-attr]
        if any(a < b for a, b in itertools.pairwise(ttls)):
            raise CacheRejected("a ttl='1h' cache_control block must not come after a ttl='5m' one")
        digests: list[str] = []
        upto: list[int] = []
        h = hashlib.sha256()
        total = 0
        for text, n, _ in blocks:
            h.update(text.encode())
            total += n
            digests.append(h.copy().hexdigest())
            upto.append(total)
        now = self.clock()
        hit = -1  # the last block of the longest cached prefix
        for i in marks:
            for j in range(i, max(i - LOOKBACK, 0) - 1, -1):
                found = self.entries.get(digests[j])
                if found is not None and found[0] > now:
                    hit = max(hit, j)
                    break
        read = upto[hit] if hit >= 0 else 0
        if hit >= 0:  # a read refreshes the entry it hit
            self.entries[digests[hit]] = (now + self.entries[digests[hit]][1], self.entries[digests[hit]][1])
        write_5m = write_1h = 0
        done = read
        for i, ttl in zip(marks, ttls, strict=True):
            if upto[i] < self.min_tokens:
                continue
            self.entries[digests[i]] = (now + ttl, ttl)
            if upto[i] > done:
                if ttl == LONG:
                    write_1h += upto[i] - done
                else:
                    write_5m += upto[i] - done
                done = upto[i]
        counts = Counts(total - read - write_5m - write_1h, read, write_5m, write_1h)
        self.history.append(counts)
        return counts

    def apply(self, reply: Reply, body: dict[str, Any]) -> Reply:
        return self.account(body).into(reply)


def _anthropic_blocks(body: dict[str, Any]) -> list[tuple[str, int, dict[str, Any] | None]]:
    """(hashed text, tokens, cache_control) per block, in prompt order: tools, system, messages."""
    out: list[tuple[str, int, dict[str, Any] | None]] = []

    def add(block: Any) -> None:
        stripped = _strip(block)
        text = json.dumps(stripped, separators=(",", ":"), sort_keys=True)
        cc = block.get("cache_control") if isinstance(block, dict) else None
        out.append((text, _tokens(stripped), cc))

    for tool in body.get("tools") or []:
        add(tool)
    system = body.get("system")
    for block in [system] if isinstance(system, str) else system or []:
        add(block)
    for msg in body.get("messages") or []:
        content = msg.get("content")
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content or []:
            add({"role": msg.get("role"), **block} if isinstance(block, dict) else block)
    return out


class PrefixCache:
    STEP = 128
    MIN = 1024

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.entries: dict[str, float] = {}
        self.history: list[Counts] = []

    def account(self, body: dict[str, Any]) -> Counts:
        scope = str(body.get("prompt_cache_key") or "")
        text = json.dumps(
            {"tools": body.get("tools"), "messages": body.get("messages")}, separators=(",", ":"), sort_keys=False
        )
        total = max(1, len(text) // 4)
        now = self.clock()
        h = hashlib.sha256(scope.encode() + b"\x00")
        chunk = self.STEP * 4  # characters per 128 tokens
        digests = []
        for k in range(1, total // self.STEP + 1):
            h.update(text[(k - 1) * chunk : k * chunk].encode())
            if k * self.STEP >= self.MIN:
                digests.append((k * self.STEP, h.copy().hexdigest()))
        read = 0
        for n, digest in digests:
            if self.entries.get(digest, 0.0) > now:
                read = n
        for _, digest in digests:
            self.entries[digest] = now + SHORT
        counts = Counts(total - read, read)
        self.history.append(counts)
        return counts

    def apply(self, reply: Reply, body: dict[str, Any]) -> Reply:
        return self.account(body).into(reply)


def read_share(history: list[Counts]) -> float:
    """Cache reads over all prompt tokens of the requests seen."""
    total = sum(c.total for c in history)
    return sum(c.read for c in history) / total if total else 0.0
