"""Responses API tool definitions -> canonical tools, and the names that map the calls back (pure).

Decisions:
- `function` tools pass as they are. A `custom` (free-text input) tool becomes a function taking one
  string `input` (a grammar goes into the description); its calls carry the bare input both ways
  (`custom_input`).
- A `namespace` tool (Codex >= 0.171 groups its sub-agent and MCP tools so) is a named group of
  function/custom tools. Chat Completions and Anthropic have no groups, so each member goes upstream
  under one flat name, `<namespace>__<name>` (the join Codex itself uses where a namespace cannot be
  kept: trailing `_` of the namespace and leading `_` of the name trimmed). Calls of a flat name go
  back to the client as the member's own `name` plus `namespace` (`ToolNames.origin`), and a call
  the client passes back with a `namespace` is flattened again (`flat_name`), so the upstream sees
  one consistent name.
- Built-in `web_search` (`web_search_preview`) is dropped, not refused: Codex attaches it to every
  request unless `web_search = "disabled"`, and it only offers a capability the model may leave
  unused; served without it, the turn is what a model that chose not to search would produce. A
  tool_choice forcing it is still refused. Every other built-in tool (file_search, computer_use,
  code_interpreter, image_generation, mcp, ...) is a 400 naming `tools[i].type`: we run none.
"""

from __future__ import annotations

from typing import Any

import orjson

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import Tool

CUSTOM_SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
_DROPPED = frozenset({"web_search", "web_search_preview"})
_MEMBERS = frozenset({"function", "custom"})


def _bad(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"`{field}` {problem}", param=field)


def flat_name(namespace: str, name: str) -> str:
    """The one name a namespace member is known by upstream."""
    return f"{namespace.rstrip('_')}__{name.lstrip('_')}"


def custom_input(arguments: str) -> str:
    """A custom tool's bare input from the arguments of the function standing in for it."""
    try:
        v = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    return v["input"] if isinstance(v, dict) and isinstance(v.get("input"), str) else arguments


def _custom_description(t: dict[str, Any], desc: str | None) -> str:
    f = t.get("format")
    note = "Send the tool's whole input as the string `input`."
    if isinstance(f, dict) and f.get("type") == "grammar" and isinstance(f.get("definition"), str):
        note += f" It must follow this {f.get('syntax') or 'lark'} grammar:\n{f['definition']}"
    return f"{desc}\n\n{note}" if desc else note


def _one(t: dict[str, Any], kind: str, name: str) -> Tool:
    params, desc = t.get("parameters"), t.get("description")
    desc = desc if isinstance(desc, str) else None
    if kind == "custom":
        return Tool(name=name, description=_custom_description(t, desc), parameters=CUSTOM_SCHEMA)
    return Tool(name=name, description=desc, parameters=params if isinstance(params, dict) else {})


def _name(t: dict[str, Any], where: str) -> str:
    name = t.get("name")
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}.name", "is required")
    return name


def parse_tools(raw: Any) -> list[Tool]:
    """The request's `tools` -> canonical tools (namespaces flattened, web_search dropped)."""
    if not isinstance(raw, list):
        raise _bad("tools", "must be a list")
    out: list[Tool] = []
    for i, t in enumerate(raw):
        kind = t.get("type") if isinstance(t, dict) else None
        where = f"tools[{i}]"
        if kind in _DROPPED:
            continue
        if kind == "namespace":
            assert isinstance(t, dict)
            ns, members = _name(t, where), t.get("tools")
            if not isinstance(members, list):
                raise _bad(f"{where}.tools", "must be a list of function tools")
            for j, m in enumerate(members):
                mk = m.get("type") if isinstance(m, dict) else None
                if mk not in _MEMBERS:
                    raise _bad(f"{where}.tools[{j}].type", f"{mk!r} is not supported in a namespace")
                assert isinstance(m, dict)
                out.append(_one(m, mk, flat_name(ns, _name(m, f"{where}.tools[{j}]"))))
            continue
        if kind not in _MEMBERS:
            raise _bad(
                f"{where}.type",
                f"{kind!r} is not supported: this server runs no built-in tools (web search, file search,"
                " computer use, ...); only `function`, `custom` and `namespace` tools are",
            )
        assert isinstance(t, dict)
        out.append(_one(t, kind, _name(t, where)))
    return out


class ToolNames:
    """How a canonical tool call's name is shown to the client: which names are custom tools, and
    which flat names stand for a namespace member. Built once per response from the echoed tools."""

    __slots__ = ("custom", "members")

    def __init__(self, tools: Any) -> None:
        self.custom: set[str] = set()
        self.members: dict[str, tuple[str, str]] = {}  # flat name -> (namespace, member name)
        for t in tools if isinstance(tools, list) else ():
            if not isinstance(t, dict):
                continue
            if t.get("type") == "custom" and isinstance(t.get("name"), str):
                self.custom.add(t["name"])
            elif t.get("type") == "namespace" and isinstance(t.get("name"), str):
                for m in t.get("tools") or ():
                    if isinstance(m, dict) and isinstance(m.get("name"), str):
                        flat = flat_name(t["name"], m["name"])
                        self.members[flat] = (t["name"], m["name"])
                        if m.get("type") == "custom":
                            self.custom.add(flat)

    def origin(self, name: str) -> tuple[str | None, str]:
        """(namespace or None, the name the client declared) for a canonical tool name."""
        member = self.members.get(name)
        return member if member is not None else (None, name)
