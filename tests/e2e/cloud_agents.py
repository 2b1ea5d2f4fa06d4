"""The one-step coding agent of ``agent_upstream`` over the cloud kinds' emulators: AWS Bedrock
(Converse) and Gemini's native API, so a real agent CLI can be driven through them end to end.

The agent's decisions are ``_Agent``'s (call the client's file-writing or shell tool, then answer
``Done.`` once its result comes back); it reads tools and tool results in the OpenAI and Anthropic
shapes, so each class first reads its own wire format into those: Bedrock's
``toolConfig.tools[].toolSpec`` and ``toolResult`` blocks, Gemini's ``functionDeclarations`` and
``functionResponse`` parts. The emulators then answer in their own format, as strict as ever (the
Gemini one refuses a Gemini 3 tool loop whose function call comes back without its signature).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from upstreams.base import Received
from upstreams.bedrock_server import BedrockUpstream
from upstreams.gemini_server import GeminiUpstream
from upstreams.script import Reply

from e2e.agent_upstream import Decision, _Agent


def _lower_types(schema: Any) -> Any:
    """A schema's `type` names in JSON Schema's case (Gemini's OpenAPI subset writes `STRING`)."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


class _Translated(_Agent):
    """Decides on the request as read into the Anthropic shape; records the request as received."""

    def anthropic_shape(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def decide(self, rec: Received) -> tuple[Reply, Decision]:
        body = rec.body if isinstance(rec.body, dict) else {}
        reply, decision = super().decide(dataclasses.replace(rec, body=self.anthropic_shape(body)))
        return reply, dataclasses.replace(decision, received=rec)


class BedrockAgentUpstream(_Translated, BedrockUpstream):
    """Bedrock Converse upstream answering like a one-step coding agent."""

    CALL_PREFIX = "tooluse_e2e"

    def anthropic_shape(self, body: dict[str, Any]) -> dict[str, Any]:
        specs = [t.get("toolSpec") for t in (body.get("toolConfig") or {}).get("tools") or []]
        tools = [{"name": s.get("name"), "input_schema": (s.get("inputSchema") or {}).get("json") or {}}
                 for s in specs if isinstance(s, dict)]  # fmt: skip
        messages = []
        for m in body.get("messages") or []:
            blocks = [{"type": "tool_result", **b["toolResult"]} for b in m.get("content") or [] if "toolResult" in b]
            messages.append({"role": m.get("role"), "content": blocks})
        return {"tools": tools, "messages": messages}


class GeminiAgentUpstream(_Translated, GeminiUpstream):
    """Gemini API upstream answering like a one-step coding agent."""

    CALL_PREFIX = "gemini_e2e"

    def anthropic_shape(self, body: dict[str, Any]) -> dict[str, Any]:
        tools = []
        for group in body.get("tools") or []:
            for d in group.get("functionDeclarations") or []:
                schema = d.get("parametersJsonSchema") or d.get("parameters") or {}
                tools.append({"name": d.get("name"), "input_schema": _lower_types(schema)})
        messages = []
        for c in body.get("contents") or []:
            parts = c.get("parts") or []
            blocks = [{"type": "tool_result", **p["functionResponse"]} for p in parts if "functionResponse" in p]
            messages.append({"role": "user" if c.get("role") == "user" else "assistant", "content": blocks})
        return {"tools": tools, "messages": messages}
