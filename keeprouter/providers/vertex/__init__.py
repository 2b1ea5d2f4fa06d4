"""The `vertex` provider kind: Google Vertex AI's Gemini (generateContent) and Claude (rawPredict) models."""

from .adapter import VertexAdapter

__all__ = ["VertexAdapter"]
