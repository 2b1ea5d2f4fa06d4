"""Imported config entries written as YAML, alone or into an operator's existing config file.

An existing file is edited as text, never loaded and dumped again: its comments, order, quoting and
`${VAR}` references stay byte for byte, and so does every entry already in it (a model id the file
has is never written again, whatever the list says). New models go at the end of its `models:`
block, a new provider at the end of its `providers:` block, each block created when missing.
Unpriced models are written commented out, under a line saying what to fill in: the file loads and
serves the priced ones meanwhile, and a model never goes live at a price nobody set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

UNPRICED_NOTE = (
    "PRICE UNKNOWN: the list gives no price for the models below. Set pricing.input and\n"
    "pricing.output (USD per 1M tokens) and the source you read them from, then uncomment them."
)
_EMPTY = r"[ \t]*(?:\{\}|null|~)?[ \t]*(?:#.*)?$"  # `models:`, `models: {}`, `models:  # comment`


@dataclass
class Merged:
    text: str
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # already in the file: left as they were
    unpriced: list[str] = field(default_factory=list)  # written commented out


def dump(entries: Mapping[str, Any], indent: int, *, commented: bool = False) -> str:
    """`entries` as a YAML mapping indented by `indent` spaces (and commented out, when asked)."""
    if not entries:
        return ""
    text = yaml.safe_dump(dict(entries), sort_keys=False, allow_unicode=True, width=100, indent=2)
    pad = " " * indent
    return "".join(f"{pad}# {line}" if commented else pad + line for line in text.splitlines(keepends=True))


def merge(
    existing: str | None,
    priced: Mapping[str, Any],
    unpriced: Mapping[str, Any],
    *,
    provider: tuple[str, dict[str, Any]] | None = None,
    header: str = "",
) -> Merged:
    """The config text with the imported entries added (`existing` None: a new file).

    `provider`: (id, its config block) to add when the file has no provider of that id."""
    text = existing or ""
    loaded = yaml.safe_load(text) if text.strip() else None
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError("the existing config is not a YAML mapping")
    have: dict[str, Any] = dict(loaded or {})
    models_before = _block(have, "models")
    out = Merged(text)
    out.kept = sorted(k for k in (*priced, *unpriced) if k in models_before)
    new = {k: v for k, v in priced.items() if k not in models_before}
    # A model written commented out by an earlier import is not written again.
    waiting = {k: v for k, v in unpriced.items() if k not in models_before and not _commented(text, k)}
    out.added, out.unpriced = list(new), list(waiting)
    if provider is not None and provider[0] not in _block(have, "providers"):
        text = _append(text, "providers", lambda i: dump({provider[0]: provider[1]}, i))
    if new or waiting:

        def entries(i: int) -> str:
            parts = [dump(new, i)]
            if waiting:
                note = "".join(f"{' ' * i}# {line}\n" for line in UNPRICED_NOTE.splitlines())
                parts.append(note + dump(waiting, i, commented=True))
            return "".join(parts)

        text = _append(text, "models", entries)
    if header and existing is None:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    _check(loaded, text, new)
    out.text = text
    return out


def _block(loaded: dict[str, Any], key: str) -> dict[str, Any]:
    value = loaded.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key}: in the existing config is not a mapping")
    return value


def _commented(text: str, mid: str) -> bool:
    return re.search(rf"^[ \t]*#[ \t]*{re.escape(mid)}:[ \t]*$", text, re.M) is not None or (
        re.search(rf"^[ \t]*#[ \t]*'{re.escape(mid)}':[ \t]*$", text, re.M) is not None
    )


def _append(text: str, key: str, render: Callable[[int], str]) -> str:
    """`text` with `render(indent)` added at the end of its top-level `key:` block (created at the
    end of the file when it has none)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    head = next((i for i, line in enumerate(lines) if re.match(rf"{key}:", line)), None)
    if head is None:
        sep = "\n" if lines and lines[-1].strip() else ""
        return "".join(lines) + f"{sep}{key}:\n" + render(2)
    if not re.match(rf"{key}:{_EMPTY}", lines[head]):
        raise ValueError(f"{key}: is written in flow style ({key}: {{...}}); write it as a block to merge into it")
    if re.match(rf"{key}:[ \t]*(?:\{{\}}|null|~)", lines[head]):
        lines[head] = f"{key}:\n"
    end = next((i for i in range(head + 1, len(lines)) if re.match(r"[^\s#]", lines[i])), len(lines))
    body = lines[head + 1 : end]
    indent = next((len(x) - len(x.lstrip(" ")) for x in body if x.strip() and not x.lstrip().startswith("#")), 2)
    # After the block's last entry line: comments and blank lines before the next key belong to it.
    last = max((i for i in range(head + 1, end) if lines[i].strip() and not lines[i].lstrip().startswith("#")),
               default=head)  # fmt: skip
    return "".join(lines[: last + 1]) + render(indent) + "".join(lines[last + 1 :])


def _check(before: dict[str, Any] | None, text: str, new: Mapping[str, Any]) -> None:
    """The merged text reads back as the file it was plus the new models, nothing else changed."""
    after = yaml.safe_load(text) or {}
    old = before or {}
    for key in set(old) | set(after):
        if key in ("models", "providers"):
            continue
        if old.get(key) != after.get(key):
            raise RuntimeError(f"merging changed {key}: of the existing config")
    old_models, new_models = old.get("models") or {}, after.get("models") or {}
    if any(new_models.get(k) != v for k, v in old_models.items()) or set(new_models) != set(old_models) | set(new):
        raise RuntimeError("merging would change the existing models; nothing was written")
    old_providers, new_providers = old.get("providers") or {}, after.get("providers") or {}
    if any(new_providers.get(k) != v for k, v in old_providers.items()):
        raise RuntimeError("merging would change the existing providers; nothing was written")
