"""`keeprouter catalogue import SOURCE --provider ID`: config entries from a model list.

SOURCE is an OpenAI-compatible host's `GET /v1/models` (ids and context windows, no prices) or
OpenRouter's public `GET /api/v1/models` (prices, context, modalities, parameters), as a URL or a
saved JSON file. The entries (`catalogue/importer.py`) are printed, written to a new file, or merged
into an existing config (`catalogue/merge.py`: its own entries are never rewritten). They are
checked with the config loader before anything is written."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import orjson

from keeprouter.catalogue import catalogue, importer, merge
from keeprouter.config import ConfigError, parse_config

FETCH_TIMEOUT = 60.0
MAX_LIST_BYTES = 64 * 1024 * 1024  # OpenRouter's whole list is a few MB


def add_parsers(sub: Any) -> None:
    c = sub.add_parser("catalogue", help="fill a config file's models and prices from a model list")
    cs = c.add_subparsers(dest="catalogue_cmd", required=True)
    i = cs.add_parser(
        "import",
        help="config entries from a provider's /v1/models or OpenRouter's /api/v1/models",
        description="Read a model list and write its models as config entries for one provider. "
        "Prices come from lists that carry them (OpenRouter's shape), converted to USD per 1M tokens; "
        "models without a price are written commented out, for you to price.",
    )
    i.add_argument("source", help="the list's URL (https://host/v1/models, https://openrouter.ai/api/v1/models) "
                                   "or a saved JSON file")  # fmt: skip
    i.add_argument("--provider", required=True, help="the provider id the endpoints are attached to")
    i.add_argument("--match", action="append", default=[], metavar="GLOB",
                   help="only model ids matching this glob (repeatable: any of them)")  # fmt: skip
    i.add_argument("--output", "-o", help="write to this file (default: standard output)")
    i.add_argument("--merge", action="store_true",
                   help="add to the existing --output file, keeping every entry it already has")  # fmt: skip
    i.add_argument("--base-url", help="the provider's base URL, when it is new (default: the list's URL "
                                      "without /models)")  # fmt: skip
    i.add_argument("--api-key-env", metavar="VAR",
                   help="the variable holding the provider's key: sent when fetching the list, and "
                        "written as api_key: ${VAR} for a new provider (default: <PROVIDER>_API_KEY)")  # fmt: skip
    i.add_argument("--price-source", metavar="URL", help="the URL recorded as the prices' source "
                                                         "(default: the list's URL)")  # fmt: skip
    i.add_argument("--as-of", help="the date recorded with the prices, YYYY-MM-DD (default: today, UTC)")
    i.add_argument("--replace-builtin", action="store_true",
                   help="also import ids the built-in catalogue has (the file's model replaces it)")  # fmt: skip
    i.set_defaults(fn=run)


def _fail(message: str) -> NoReturn:
    print(f"keeprouter: {message}", file=sys.stderr)
    raise SystemExit(2)


def run(args: argparse.Namespace, settings: Any) -> None:
    env = dict(os.environ)
    key_env = args.api_key_env or re.sub(r"[^A-Z0-9]", "_", args.provider.upper()) + "_API_KEY"
    is_url = args.source.startswith(("http://", "https://"))
    source = args.price_source or (args.source if is_url else None)
    if source is None:
        _fail("--price-source URL is needed with a file: the prices' source is recorded with each price")
    try:
        as_of = dt.date.fromisoformat(args.as_of) if args.as_of else dt.datetime.now(dt.UTC).date()
    except ValueError:
        _fail("--as-of: must be a date, YYYY-MM-DD")
    out_path = Path(args.output) if args.output else None
    if out_path is not None and out_path.exists() and not args.merge:
        _fail(f"{out_path} exists: pass --merge to add to it (its own entries are kept), or choose another file")
    if args.merge and (out_path is None or not out_path.exists()):
        _fail("--merge needs an existing --output file")

    data = _read(args.source, env.get(key_env)) if is_url else _load(Path(args.source))
    try:
        found = importer.read_models(data, provider=args.provider, source=source, as_of=as_of, match=args.match)
    except ValueError as e:
        _fail(f"{args.source}: {e}")
    builtin = set() if args.replace_builtin else set(catalogue.builtin_models())
    shadowed = sorted(k for k in (*found.priced, *found.unpriced) if k in builtin)
    priced = {k: v for k, v in found.priced.items() if k not in builtin}
    unpriced = {k: v for k, v in found.unpriced.items() if k not in builtin}

    provider_block = _provider_block(args, key_env, is_url)
    _validate(args.provider, priced)
    existing = out_path.read_text() if args.merge and out_path is not None else None
    header = (f"Imported by `keeprouter catalogue import` from {source} on {as_of.isoformat()}.\n"
              "Prices are USD per 1M tokens; re-check them at their source before relying on them.")  # fmt: skip
    try:
        merged = merge.merge(existing, priced, unpriced, provider=provider_block, header=header)
    except (ValueError, RuntimeError) as e:
        _fail(f"{out_path}: {e}")
    if out_path is None:
        sys.stdout.write(merged.text)
    else:
        out_path.write_text(merged.text)
    _report(merged, shadowed, found.refused, out_path)


def _read(url: str, key: str | None) -> Any:
    headers = {"Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        raw = asyncio.run(_fetch(url, headers))
    except (aiohttp.ClientError, TimeoutError) as e:
        _fail(f"could not read {url}: {type(e).__name__}: {e}")
    except _Refused as e:
        _fail(f"{url}: {e}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        _fail(f"{url} did not answer JSON")


class _Refused(Exception):
    pass


async def _fetch(url: str, headers: dict[str, str]) -> bytes:
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url, headers=headers) as resp:
        body = await resp.content.read(MAX_LIST_BYTES + 1)
        if resp.status != 200:
            raise _Refused(f"answered HTTP {resp.status}: {body[:300].decode('utf-8', 'replace')}")
        if len(body) > MAX_LIST_BYTES:
            raise _Refused(f"the list is larger than {MAX_LIST_BYTES} bytes")
        return body


def _load(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as e:
        _fail(f"cannot read {path}: {e.strerror}")
    except orjson.JSONDecodeError:
        _fail(f"{path} is not JSON")


def _provider_block(args: argparse.Namespace, key_env: str, is_url: bool) -> tuple[str, dict[str, Any]] | None:
    """The provider's config block, written when the target file lacks it; None for a built-in
    provider (its own variable turns it on)."""
    if args.provider in catalogue.builtin_providers() and not args.base_url:
        return None
    base = args.base_url or (re.sub(r"/models/?(\?.*)?$", "", args.source) if is_url else None)
    if not base:
        _fail(f"--base-url is needed: provider {args.provider} is new and a file does not say where it is")
    return args.provider, {"api": "openai", "base_url": base, "api_key": f"${{{key_env}}}"}


def _validate(provider: str, priced: dict[str, Any]) -> None:
    """The entries as the config loader reads them (the provider stands in, so its key need not be set)."""
    stub = {"api": "openai", "base_url": "http://127.0.0.1:1", "api_key": "x"}
    try:
        parse_config({"providers": {provider: stub}, "models": priced}, env={})
    except ConfigError as e:
        _fail(f"an imported entry does not load: {e}")


def _report(merged: merge.Merged, shadowed: list[str], refused: dict[str, str], out: Path | None) -> None:
    where = str(out) if out is not None else "standard output"
    lines = [f"{len(merged.added)} models written to {where}"]
    if merged.unpriced:
        lines.append(f"{len(merged.unpriced)} without a price, written commented out for you to price")
    if merged.kept:
        lines.append(f"{len(merged.kept)} already in the file, left as they are: {', '.join(merged.kept[:10])}"
                     + (" ..." if len(merged.kept) > 10 else ""))  # fmt: skip
    if shadowed:
        lines.append(f"{len(shadowed)} are built-in models, skipped (--replace-builtin to import them): "
                     + ", ".join(shadowed[:10]) + (" ..." if len(shadowed) > 10 else ""))  # fmt: skip
    for mid, why in sorted(refused.items()):
        lines.append(f"not imported: {mid}: {why}")
    for line in lines:
        print(f"keeprouter: {line}", file=sys.stderr)
