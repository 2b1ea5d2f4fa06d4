"""Reading the pages as served: a GET, and the Markdown and HTML forms parsed back into their
headings and tables (cell texts), so a test can check that both forms say the same."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import aiohttp
from markdown_it import MarkdownIt

MD = MarkdownIt("commonmark").enable("table")


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text(), r.headers


def md_tables(text: str) -> list[list[list[str]]]:
    """Every table as rows of cell texts (header row first)."""
    tables: list[list[list[str]]] = []
    row: list[str] | None = None
    for tok in MD.parse(text):
        if tok.type == "table_open":
            tables.append([])
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close" and row is not None:
            tables[-1].append(row)
            row = None
        elif tok.type == "inline" and row is not None and tok.map is not None and tables:
            row.append("".join(c.content for c in (tok.children or []) if c.type in ("text", "code_inline")))
    return tables


def md_headings(text: str) -> list[tuple[str, str]]:
    tokens = MD.parse(text)
    return [(t.tag, tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open"]


class _HtmlTables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(text: str) -> list[list[list[str]]]:
    p = _HtmlTables()
    p.feed(text)
    return p.tables
