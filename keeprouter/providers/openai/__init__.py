"""The OpenAI Chat Completions provider kind: adapter, host quirks, and the upstream translators
(`request`, `response`, `stream`); `embeddings` (pure) and `retrieval` (its calls) serve the
hosts' `/embeddings` and `/rerank`."""

from .adapter import OpenAIAdapter

__all__ = ["OpenAIAdapter"]
