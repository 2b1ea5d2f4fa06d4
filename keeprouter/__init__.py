"""KeepRouter: one endpoint and one key for many LLM models and providers, billed at cost."""

__version__ = "0.1.0"
