"""Host quirks: applied as data to OpenAI-format bodies."""

from __future__ import annotations

import re
from typing import Any

from keeprouter.providers.openai import hosts


def test_openai_host_gets_max_completion_tokens() -> None:
    q = hosts.quirks_for("https://api.openai.com/v1")
    body = hosts.apply(q, {"model": "o3", "max_tokens": 100, "messages": []})
    assert body == {"model": "o3", "max_completion_tokens": 100, "messages": []}


def test_plain_hosts_are_untouched() -> None:
    assert hosts.quirks_for("http://127.0.0.1:8000/v1") is hosts.PLAIN


def test_mistral_tool_ids_become_nine_alnum_and_stay_paired() -> None:
    q = hosts.quirks_for("https://api.mistral.ai/v1")
    body: dict[str, Any] = {
        "messages": [
            {"role": "assistant", "tool_calls": [{"id": "toolu_01ABCdef", "type": "function"}]},
            {"role": "tool", "tool_call_id": "toolu_01ABCdef", "content": "ok"},
            {"role": "assistant", "tool_calls": [{"id": "abcDEF123", "type": "function"}]},
        ]
    }
    hosts.apply(q, body)
    new_id = body["messages"][0]["tool_calls"][0]["id"]
    assert re.fullmatch(r"[a-zA-Z0-9]{9}", new_id)
    assert body["messages"][1]["tool_call_id"] == new_id
    assert body["messages"][2]["tool_calls"][0]["id"] == "abcDEF123"  # already valid: kept


def test_anthropic_base_url_with_or_without_v1() -> None:
    from keeprouter.config import ProviderConfig
    from keeprouter.providers.anthropic import AnthropicAdapter

    for base in ("http://127.0.0.1:9", "http://127.0.0.1:9/v1"):
        adapter = AnthropicAdapter(ProviderConfig("an", "anthropic", base, "k"))
        assert adapter.url == "http://127.0.0.1:9/v1/messages"
