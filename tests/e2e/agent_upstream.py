"""Upstreams that play a tiny coding agent, so a real agent CLI can be driven end to end.

``AgentUpstream`` is the ``OpenAIUpstream`` emulator (exact Chat Completions wire format, streaming
tool calls included), ``AnthropicAgentUpstream`` the ``AnthropicUpstream`` one, each with a
content-aware default instead of a FIFO script, because an agent CLI sends a varying number of
requests (title/topic calls, the main loop, retries):

- request offers tools and has no tool result yet -> one (streamed) call creating ``workdir/filename``:
  to the client's file-writing tool (``Write``, or any tool taking ``file_path`` + ``content``), else
  to its shell tool (Codex's ``exec_command`` taking ``cmd``, or ``shell`` taking a ``command`` list);
- request contains a tool result (OpenAI ``role: "tool"``, Anthropic ``tool_result`` block) -> the
  final text ``Done.``;
- request without tools (titles, summaries, quota probes) -> a short text.

Items queued with ``script(...)`` still take precedence (e.g. to inject a ``Fault``). Every decision is
recorded in ``decisions`` alongside ``requests``.
"""

from __future__ import annotations

import itertools
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.base import EmulatedUpstream, Received
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply, ToolCall

HELLO_CONTENT = 'print("hello")\n'
FINAL_TEXT = "Done."
PLAIN_TEXT = "Hello file task"


@dataclass(frozen=True)
class Decision:
    kind: str  # "tool_call" | "final" | "plain" | "no_write_tool" | "scripted"
    received: Received
    tool_call_id: str | None = None
    tool_name: str | None = None


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    fn = tool.get("function")
    name = fn.get("name") if isinstance(fn, dict) else tool.get("name")
    return name if isinstance(name, str) else None


def _tool_params(tool: Any) -> dict[str, Any]:
    """A tool's parameter properties, in either format (OpenAI ``function.parameters``, Anthropic
    ``input_schema``)."""
    if not isinstance(tool, dict):
        return {}
    fn = tool.get("function")
    params = fn.get("parameters") if isinstance(fn, dict) else tool.get("input_schema")
    props = params.get("properties") if isinstance(params, dict) else None
    return props if isinstance(props, dict) else {}


def find_write_tool(tools: list[Any]) -> str | None:
    """The name of the offered file-writing tool: ``Write`` if present, else one taking file_path+content."""
    names = [_tool_name(t) for t in tools]
    if "Write" in names:
        return "Write"
    for tool, name in zip(tools, names, strict=True):
        if name and {"file_path", "content"} <= set(_tool_params(tool)):
            return name
    return None


def find_shell_tool(tools: list[Any]) -> tuple[str, str] | None:
    """(name, argument) of a shell tool: one taking a ``cmd`` string or a ``command`` list."""
    for tool in tools:
        name, props = _tool_name(tool), _tool_params(tool)
        if name and (props.get("cmd") or {}).get("type") == "string":
            return name, "cmd"
        if name and (props.get("command") or {}).get("type") == "array":
            return name, "command"
    return None


def tool_results(body: Any) -> list[dict[str, Any]]:
    """The tool results of a request body: OpenAI ``role: "tool"`` messages, Anthropic ``tool_result``
    blocks."""
    messages = body.get("messages") if isinstance(body, dict) else None
    out: list[dict[str, Any]] = []
    for m in messages or []:
        if not isinstance(m, dict):
            continue
        if m.get("role") == "tool":
            out.append(m)
        elif m.get("role") == "user" and isinstance(m.get("content"), list):
            out.extend(b for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_result")
    return out


class _Agent(EmulatedUpstream):
    """The agent's decisions, over either emulator (see module docstring); mixed in before the concrete
    emulator, so ``super()`` reaches its ``__init__`` and ``generate``."""

    CALL_PREFIX = "call_e2e"

    def __init__(
        self,
        workdir: Path,
        *,
        filename: str = "hello.py",
        content: str = HELLO_CONTENT,
        **options: Any,
    ):
        super().__init__(**options)
        self.workdir = workdir
        self.filename = filename
        self.content = content
        self.decisions: list[Decision] = []
        self._ids = itertools.count(1)

    @property
    def target(self) -> Path:
        return self.workdir / self.filename

    def decide(self, rec: Received) -> tuple[Reply, Decision]:
        body = rec.body if isinstance(rec.body, dict) else {}
        tools = body.get("tools") or []
        if not tools:
            return Reply(text=PLAIN_TEXT), Decision("plain", rec)
        if tool_results(body):
            return Reply(text=FINAL_TEXT), Decision("final", rec)
        args: dict[str, Any]
        name = find_write_tool(tools)
        shell = find_shell_tool(tools) if name is None else None
        if name is not None:
            args = {"file_path": str(self.target), "content": self.content}
        elif shell is not None:
            name, arg = shell
            line = f"printf %s {shlex.quote(self.content)} > {shlex.quote(str(self.target))}"
            args = {"cmd": line} if arg == "cmd" else {"command": ["bash", "-c", line]}
        else:
            return Reply(text="No file-writing tool was offered."), Decision("no_write_tool", rec)
        call_id = f"{self.CALL_PREFIX}{next(self._ids):04d}"
        reply = Reply(text=None, tool_calls=[ToolCall(id=call_id, name=name, arguments_json=args)])
        return reply, Decision("tool_call", rec, tool_call_id=call_id, tool_name=name)

    async def generate(self, request: web.Request, rec: Received, *, stream: bool) -> web.StreamResponse:
        # ``generate`` takes the next item synchronously before its first await, so queueing the decision
        # here cannot be interleaved with a concurrent request.
        if self.pending:
            self.decisions.append(Decision("scripted", rec))
        else:
            reply, decision = self.decide(rec)
            self.decisions.append(decision)
            self.script(reply)
        return await super().generate(request, rec, stream=stream)


class AgentUpstream(_Agent, OpenAIUpstream):
    """OpenAI Chat Completions upstream answering like a one-step coding agent."""

    CALL_PREFIX = "call_e2e"


class AnthropicAgentUpstream(_Agent, AnthropicUpstream):
    """Anthropic Messages upstream answering like a one-step coding agent."""

    CALL_PREFIX = "toolu_e2e"
