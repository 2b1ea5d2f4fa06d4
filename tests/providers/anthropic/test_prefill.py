"""A final assistant turn is a prefill, and Claude refuses one ending in whitespace ("final assistant
content cannot end with trailing whitespace"): its last text block goes out stripped on the right,
on Anthropic and on Bedrock's Converse alike. The emulator refuses it as the real API does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.clients import anthropic_client, openai_client
from support.gateway import ADMIN_KEY, run_gateway, sqlite_url
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.script import Reply

from keeprouter.formats.canonical import ChatRequest, Message, TextPart, ToolCallPart
from keeprouter.providers.anthropic.request import build_request
from keeprouter.providers.bedrock.request import messages as converse_messages


def chat(*turns: Message) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="Write JSON.")]), *turns])


def assistant(*parts: Any) -> Message:
    return Message(role="assistant", content=list(parts))


def test_the_last_text_of_a_final_assistant_turn_is_stripped_on_the_right() -> None:
    body = build_request(
        chat(assistant(TextPart(text="  Here it is:\n"), TextPart(text='{"a": \n '))), "up", default_max_tokens=100
    )
    assert body["messages"][-1]["content"] == [
        {"type": "text", "text": "  Here it is:\n"},
        {"type": "text", "text": '{"a":'},
    ]


def test_a_blank_last_block_goes_and_an_emptied_turn_with_it() -> None:
    body = build_request(chat(assistant(TextPart(text="Sure."), TextPart(text=" \n"))), "up", default_max_tokens=100)
    assert body["messages"][-1]["content"] == [{"type": "text", "text": "Sure."}]
    body = build_request(chat(assistant(TextPart(text="\n\n"))), "up", default_max_tokens=100)
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_only_a_final_assistant_turn_and_only_its_text_are_touched() -> None:
    history = chat(assistant(TextPart(text="Earlier answer. ")), Message(role="user", content=[TextPart(text="More ")]))
    body = build_request(history, "up", default_max_tokens=100)
    assert body["messages"][1]["content"] == [{"type": "text", "text": "Earlier answer. "}]
    assert body["messages"][2]["content"] == [{"type": "text", "text": "More "}]
    call = build_request(
        chat(assistant(TextPart(text="Calling. "), ToolCallPart(id="t1", name="f", arguments="{}"))),
        "up",
        default_max_tokens=100,
    )
    assert call["messages"][-1]["content"][0] == {"type": "text", "text": "Calling. "}


def test_converse_turns_follow_the_same_rule() -> None:
    turns = converse_messages(chat(assistant(TextPart(text="Here it is:\n"))).messages)
    assert turns[-1] == {"role": "assistant", "content": [{"text": "Here it is:"}]}
    turns = converse_messages(chat(assistant(TextPart(text=" "))).messages)
    assert [t["role"] for t in turns] == ["user"]


@pytest.mark.parametrize("client", ["openai", "anthropic"])
async def test_a_prefill_ending_in_a_newline_is_answered_not_refused(
    make_anthropic_upstream: Callable[..., Awaitable[AnthropicUpstream]], tmp_path: Path, client: str
) -> None:
    up = await make_anthropic_upstream()
    up.script(Reply(text='"ok": true}'))
    cfg = {
        "database": sqlite_url(tmp_path),
        "admin_key": ADMIN_KEY,
        "providers": {"an": {"api": "anthropic", "base_url": up.url, "api_key": "sk-up-anthropic"}},
        "models": {"claude-x": {"context_length": 200000, "endpoints": [
            {"provider": "an", "model": "claude-up", "pricing": {"input": 3, "output": 15}}]}},
    }  # fmt: skip
    history: list[Any] = [{"role": "user", "content": "Answer in JSON."}, {"role": "assistant", "content": "{\n"}]
    async with run_gateway(cfg) as gw:
        if client == "openai":
            async with openai_client(gw.url, gw.admin_key) as oc:
                answer = await oc.chat.completions.create(model="claude-x", messages=history, max_tokens=50)
            assert answer.choices[0].message.content == '"ok": true}'
        else:
            async with anthropic_client(gw.url, gw.admin_key) as ac:
                msg = await ac.messages.create(model="claude-x", messages=history, max_tokens=50)
            assert msg.content[0].type == "text" and msg.content[0].text == '"ok": true}'
    assert up.requests[-1].body["messages"][-1]["content"] in ("{", [{"type": "text", "text": "{"}])


async def test_the_emulator_refuses_what_claude_refuses(
    make_anthropic_upstream: Callable[..., Awaitable[AnthropicUpstream]],
) -> None:
    up = await make_anthropic_upstream()
    prefill = {"role": "assistant", "content": [{"type": "text", "text": "Well, "}]}
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}, prefill]}
    headers = {"x-api-key": "sk-up-anthropic", "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as s, s.post(up.url + "/v1/messages", json=body, headers=headers) as r:
        assert r.status == 400
        assert "final assistant content cannot end with trailing whitespace" in (await r.json())["error"]["message"]
