"""OpenAI-compatible client API: `POST /v1/chat/completions` (the translators are `clients.openai_chat`)."""

from __future__ import annotations

from keeprouter.api.inference import chat_handler
from keeprouter.clients.registry import OPENAI_CHAT

chat_completions = chat_handler(OPENAI_CHAT)
