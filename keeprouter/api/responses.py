"""OpenAI Responses client API: `POST /v1/responses` (stateless), for any model on either upstream
format (the translators are `clients.openai_responses`)."""

from __future__ import annotations

from keeprouter.api.inference import chat_handler
from keeprouter.clients.registry import OPENAI_RESPONSES

create = chat_handler(OPENAI_RESPONSES)
