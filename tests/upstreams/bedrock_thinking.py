"""Claude's rule for signed thinking as Bedrock Converse enforces it, for the Bedrock emulator.

Converse hands a Claude model's messages to Claude, so a request is refused exactly when Anthropic's
API would refuse it (a `reasoningText` whose signature was not issued for exactly that text, a
`redactedContent` that was not issued, a tool loop with thinking on whose last assistant turn does
not start with its reasoning), with Claude's message behind Bedrock's own prefix, as a 400
`ValidationException`. The check itself is the Anthropic emulator's, over the Converse body read as
Messages blocks, so the two emulators cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from .anthropic_server import AnthropicUpstream

# Bedrock's wrapping of an error the model itself returned (ValidationException, HTTP 400)
MODEL_ERRORS = "The model returned the following errors: "


def claude(verify_thinking: bool) -> AnthropicUpstream:
    """Claude's signer and thinking rule (an Anthropic emulator that is never started)."""
    return AnthropicUpstream(expected_key=None, verify_thinking=verify_thinking)


def _block(b: dict[str, Any]) -> dict[str, Any]:
    if "reasoningContent" in b:
        rc = b["reasoningContent"]
        if "redactedContent" in rc:
            return {"type": "redacted_thinking", "data": rc["redactedContent"]}
        text = rc.get("reasoningText") or {}
        return {"type": "thinking", "thinking": text.get("text"), "signature": text.get("signature")}
    if "toolUse" in b:
        return {"type": "tool_use", "id": b["toolUse"].get("toolUseId")}
    if "toolResult" in b:
        return {"type": "tool_result", "tool_use_id": b["toolResult"].get("toolUseId")}
    return {"type": next(iter(b), "text")}


def as_messages(body: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Converse body that Claude's thinking rule reads, as a Messages body."""
    extra = body.get("additionalModelRequestFields")
    thinking = extra.get("thinking") if isinstance(extra, dict) else None
    messages = [
        {"role": m.get("role"), "content": [_block(b) for b in m.get("content") or [] if isinstance(b, dict)]}
        for m in body.get("messages") or []
        if isinstance(m, dict)
    ]
    return {"messages": messages, "thinking": thinking}
