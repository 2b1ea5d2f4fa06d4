"""The OpenAI Chat Completions provider kind: adapter, host quirks, and the upstream translators
(`request`, `response`, `stream`)."""

from .adapter import OpenAIAdapter

__all__ = ["OpenAIAdapter"]
