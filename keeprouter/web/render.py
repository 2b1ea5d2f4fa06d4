"""One page struct -> HTML or Markdown. Two Jinja2 environments over the same data: HTML autoescaped,
Markdown escaped by its own filters (`cell`, `text`), so a name from the catalogue or an app's
X-Title can neither inject markup in one form nor break a table in the other."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup, escape

from keeprouter.web.pages.common import Link

_TICKS = re.compile(r"`([^`]+)`")
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|])")
STATIC_FILES = ("site.css", "models.js")


@dataclass(frozen=True, slots=True)
class Static:
    """A static file, addressed by a hash of its content so it can be cached forever."""

    name: str
    url: str
    body: bytes
    content_type: str


def load_static() -> dict[str, Static]:
    out = {}
    root = resources.files("keeprouter.web").joinpath("static")
    for name in STATIC_FILES:
        body = root.joinpath(name).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:12]
        stem, ext = name.rsplit(".", 1)
        ctype = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}[ext]
        out[name] = Static(name, f"/static/{stem}.{digest}.{ext}", body, ctype)
    return out


def _html_inline(text: str) -> Markup:
    """Escape, then `code` -> <code>code</code>."""
    parts = _TICKS.split(text)
    return Markup("").join(escape(p) if i % 2 == 0 else Markup("<code>%s</code>") % p for i, p in enumerate(parts))


def _md_text(value: Any) -> str:
    return _MD_SPECIAL.sub(r"\\\1", str(value)).replace("\r", " ").replace("\n", " ")


def _md_cell(value: Any) -> str:
    if isinstance(value, Link):
        return f"[{_md_text(value.title)}]({value.md})"
    return _md_text(value)


def _md_inline(text: str) -> str:
    """Our own prose with `code` spans: kept as is, except that text outside the spans is escaped."""
    parts = _TICKS.split(text)
    return "".join(_md_text(p) if i % 2 == 0 else f"`{p}`" for i, p in enumerate(parts))


class Renderer:
    def __init__(self) -> None:
        loader = jinja2.PackageLoader("keeprouter.web", "templates")
        common: dict[str, Any] = {"undefined": jinja2.StrictUndefined, "trim_blocks": True, "lstrip_blocks": True}
        self.static = load_static()
        self.html = jinja2.Environment(loader=loader, autoescape=True, **common)
        self.html.filters["inline"] = _html_inline
        self.html.globals["static"] = lambda name: self.static[name].url
        self.md = jinja2.Environment(loader=loader, autoescape=False, keep_trailing_newline=True, **common)
        self.md.filters.update(cell=_md_cell, text=_md_text, inline=_md_inline)
        for env in (self.html, self.md):
            env.tests["link"] = lambda v: isinstance(v, Link)

    def render(self, template: str, page: Any, form: str, **context: Any) -> str:
        """`template` without extension; `form` is "html" or "md"; `context`: more template
        variables (the console's menu)."""
        env = self.html if form == "html" else self.md
        return env.get_template(f"{template}.{form}").render(page=page, **context)
