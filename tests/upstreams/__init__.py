"""Emulated upstream providers (OpenAI, Anthropic, Gemini) that KeepRouter's tests run against.

Usage: ``from upstreams import Reply, ToolCall, Fault`` then, with the ``openai_upstream`` fixture,
``openai_upstream.script(Reply(text="Hi"), Fault(status=429, headers={"retry-after": "7"}))``.
"""

from .anthropic_server import AnthropicUpstream, count_tokens
from .base import EmulatedUpstream, Received
from .gemini_server import GeminiUpstream
from .openai_server import OpenAIUpstream
from .script import Fault, Item, Reply, ToolCall

__all__ = [
    "AnthropicUpstream",
    "EmulatedUpstream",
    "Fault",
    "GeminiUpstream",
    "Item",
    "OpenAIUpstream",
    "Received",
    "Reply",
    "ToolCall",
    "count_tokens",
]
