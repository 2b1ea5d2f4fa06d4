"""The Anthropic Messages provider kind: adapter and the upstream translators (`request`,
`response`, `stream`)."""

from .adapter import AnthropicAdapter

__all__ = ["AnthropicAdapter"]
