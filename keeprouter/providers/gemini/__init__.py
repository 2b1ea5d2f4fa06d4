"""The `gemini` provider kind: Gemini's native API (generateContent / streamGenerateContent)."""

from .adapter import DEFAULT_BASE_URL, GeminiAdapter

__all__ = ["DEFAULT_BASE_URL", "GeminiAdapter"]
