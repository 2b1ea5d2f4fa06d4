"""The client APIs KeepRouter speaks, one `ClientApi` row each. The routes look a row up here;
nothing else names a client API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keeprouter.clients.anthropic_messages import request as messages_request
from keeprouter.clients.anthropic_messages import response as messages_response
from keeprouter.clients.anthropic_messages import stream as messages_stream
from keeprouter.clients.base import ClientApi
from keeprouter.clients.openai_chat import request as chat_request
from keeprouter.clients.openai_chat import response as chat_response
from keeprouter.clients.openai_chat import stream as chat_stream
from keeprouter.clients.openai_responses import request as responses_request
from keeprouter.clients.openai_responses import response as responses_response
from keeprouter.clients.openai_responses import stream as responses_stream

OPENAI_CHAT = ClientApi(
    name="openai",
    parse_request=chat_request.parse_request,
    render_response=chat_response.render,
    encoder=chat_stream.open_stream,
    end=chat_stream.end_stream,
    error_body=chat_response.render_error,
)
ANTHROPIC_MESSAGES = ClientApi(
    name="anthropic",
    parse_request=messages_request.parse_request,
    render_response=messages_response.render,
    encoder=messages_stream.open_stream,
    end=messages_stream.end_stream,
    error_body=messages_response.render_error,
    # Anthropic's SDKs always send anthropic-version; its paths all end in /messages[...]
    path_hints=("/messages",),
    header_hints=("anthropic-version",),
)
OPENAI_RESPONSES = ClientApi(
    name="responses",
    parse_request=responses_request.parse_request,
    render_response=responses_response.render,
    encoder=responses_stream.open_stream,
    end=responses_stream.end_stream,
    error_body=chat_response.render_error,  # the Responses API answers errors in the Chat Completions shape
)

CLIENT_APIS: tuple[ClientApi[Any], ...] = (OPENAI_CHAT, ANTHROPIC_MESSAGES, OPENAI_RESPONSES)
DEFAULT = OPENAI_CHAT  # the shape of an error no row claims (OpenRouter's, which most tools read)
_BY_NAME = {api.name: api for api in CLIENT_APIS}


def by_name(name: str) -> ClientApi[Any]:
    """The row called `name` (KeyError for an unknown one: a programming error)."""
    return _BY_NAME[name]


def for_request(path: str, headers: Mapping[str, str]) -> ClientApi[Any]:
    """The API a caller no handler has claimed speaks (for its 404/405): the first row whose
    hints match, else DEFAULT."""
    for api in CLIENT_APIS:
        if api.claims(path, headers):
            return api
    return DEFAULT
