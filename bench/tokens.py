"""Benchmark: what counting a Claude Code sized request costs, estimated and exactly.

    python bench/tokens.py [--iterations 200]

The request is the one tests/support/claude_code_request.py builds (~76 KB: 24 tools with JSON
schemas, a long system prompt, a few turns). Per request, the median over the iterations of:
  parse           the Anthropic body into the canonical request (for scale: every request pays it)
  estimate        tokens.estimate_request: what the request path uses (context fit, reservations)
  regex count     tokens.count_request with the offline pre-tokenizer (count_tokens, no tokenizer)
  exact o200k     tokens.count_request with tiktoken's o200k_base (count_tokens, usage-less upstreams)
The exact count is why the request path keeps the estimate: it stays off the hot path.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import orjson
from support.claude_code_request import body_size, claude_code_request

from keeprouter.clients.anthropic_messages.request import parse_request
from keeprouter.formats import tokens


def median_us(fn: Callable[[], Any], iterations: int) -> tuple[float, Any]:
    result = fn()  # warm: compiled regexes, loaded ranks
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200)
    args = ap.parse_args()
    body = claude_code_request("claude-test", stream=True)
    raw = orjson.dumps(body)
    req = parse_request(orjson.loads(raw))
    enc = tokens.load_encoding("o200k_base")
    exact = tokens.exact_counter(enc)
    print(f"request: {body_size(body) / 1024:.1f} KiB, {len(req.tools)} tools, {len(req.messages)} messages")
    rows = [
        ("parse", lambda: parse_request(orjson.loads(raw))),
        ("estimate", lambda: tokens.estimate_request(req)),
        ("regex count", lambda: tokens.count_request(req)),
        ("exact o200k", lambda: tokens.count_request(req, exact)),
    ]
    for name, fn in rows:
        us, n = median_us(fn, args.iterations)
        shown = f"{n:>7} tokens" if isinstance(n, int) else ""
        print(f"{name:<12} {us:>10.1f} us  {shown}")


if __name__ == "__main__":
    main()
