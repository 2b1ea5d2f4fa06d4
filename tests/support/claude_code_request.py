"""A Claude-Code-shaped `/v1/messages` request: 24 tools, a long system prompt, ~76 KB of JSON.

Claude Code itself is not installed where these tests run, so this is built in its shape rather
than captured from it: the tool names Claude Code declares, descriptions of the length it sends,
JSON-Schema input schemas, the system prompt as cache-controlled text blocks, `max_tokens: 32000`,
a short conversation with a tool round trip. Deterministic (no randomness), so token estimates of
it are stable.
"""

from __future__ import annotations

import json
from typing import Any

TOOL_NAMES = (
    "Task", "Bash", "Glob", "Grep", "ExitPlanMode", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit",
    "WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillShell", "SlashCommand", "LS", "NotebookRead",
    "AskUserQuestion", "Skill", "ListMcpResources", "ReadMcpResource", "EnterPlanMode", "TaskOutput",
)  # fmt: skip

_SENTENCES = (
    "Use this tool when the user asks you to inspect files in the working directory.",
    "The file_path parameter must be an absolute path, not a relative path.",
    "By default, it reads up to 2000 lines starting from the beginning of the file.",
    "You can optionally specify a line offset and limit, which is especially handy for long files.",
    "Any lines longer than 2000 characters will be truncated.",
    "Results are returned using cat -n format, with line numbers starting at 1.",
    "Always prefer editing existing files in the codebase; never write new files unless explicitly required.",
    "When you are doing an open ended search that may require multiple rounds, use the Task tool instead.",
    'Supports full regex syntax (e.g. "log.*Error", "function\\\\s+\\\\w+").',
    'Filter files with the glob parameter (e.g. "*.js", "**/*.tsx") or the type parameter (e.g. "py").',
    "IMPORTANT: Avoid using this tool to run `find`, `grep`, `cat`, `head`, `tail`, `sed`, `awk`, or `echo`.",
    "Before executing the command, verify that the parent directory exists and is the correct location.",
    'Always quote file paths that contain spaces with double quotes (e.g., cd "path with spaces/file.txt").',
    "You can specify an optional timeout in milliseconds (up to 600000ms / 10 minutes).",
    "If the output exceeds 30000 characters, output will be truncated before being returned to you.",
    "When issuing multiple commands, use the ';' or '&&' operator to separate them. DO NOT use newlines.",
    "Only create commits when requested by the user. If unclear, ask first.",
    "NEVER update the git config, NEVER run destructive git commands like push --force or hard reset.",
    "The edit will FAIL if old_string is not unique in the file; provide a larger string with more context.",
    "Use replace_all for replacing and renaming strings across the file, e.g. to rename a variable.",
    "Fetches content from a specified URL and processes it using an AI model; HTTP URLs are upgraded to HTTPS.",
    "Use this tool to create and manage a structured task list for your current coding session.",
    "Mark tasks complete IMMEDIATELY after finishing; exactly ONE task should be in_progress at any time.",
    "Launch a new agent to handle complex, multi-step tasks autonomously, with its own set of tools.",
)


def _description(i: int, sentences: int) -> str:
    return " ".join(_SENTENCES[(i * 7 + k) % len(_SENTENCES)] for k in range(sentences))


def _schema(i: int) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for k in range(3 + i % 4):
        name = ("file_path", "pattern", "command", "old_string", "new_string", "timeout", "limit")[k]
        kind = "number" if name in ("timeout", "limit") else "string"
        props[name] = {"type": kind, "description": _description(i + k, 1)}
    return {
        "type": "object",
        "properties": props,
        "required": sorted(props)[:2],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }


def claude_code_request(model: str, *, stream: bool = True, max_tokens: int = 32000) -> dict[str, Any]:
    """The request body (its compact JSON is ~76 KB)."""
    tools = [
        {"name": name, "description": _description(i, 17), "input_schema": _schema(i)}
        for i, name in enumerate(TOOL_NAMES)
    ]
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": _description(3, 185), "cache_control": {"type": "ephemeral"}},
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>" + _description(5, 20)
                                      + "</system-reminder>"}, {"type": "text", "text": "Create hello.txt"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "I'll create the file."},
            {"type": "tool_use", "id": "toolu_01A", "name": "Write",
             "input": {"file_path": "/tmp/work/hello.txt", "content": "hello\n"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A",
             "content": "File created successfully at: /tmp/work/hello.txt"},
        ]},
    ]  # fmt: skip
    return {
        "model": model,
        "max_tokens": max_tokens,
        "stream": stream,
        "system": system,
        "tools": tools,
        "messages": messages,
        "metadata": {"user_id": "user_0123456789abcdef_account__session_0f0e0d0c"},
    }


def body_size(body: dict[str, Any]) -> int:
    return len(json.dumps(body, separators=(",", ":")))
