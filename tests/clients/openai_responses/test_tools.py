"""Responses tools: namespaces flattened for the upstream and mapped back; built-in web_search dropped."""

from __future__ import annotations

from typing import Any

import pytest
from formats.fmt_helpers import check_responses_stream
from openai.types.responses import Response

from keeprouter.clients.openai_responses.request import parse_request
from keeprouter.clients.openai_responses.response import build_response, echo_of
from keeprouter.clients.openai_responses.stream import ResponsesStreamEncoder
from keeprouter.clients.openai_responses.tools import ToolNames, flat_name
from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    ChatResponse,
    Finish,
    Part,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    Usage,
)
from keeprouter.providers.anthropic import request as anthropic_req
from keeprouter.providers.openai import request as openai_req

TASK = {"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]}
SPAWN = {"type": "function", "name": "spawn_agent", "description": "Start a sub-agent.", "strict": False,
         "parameters": TASK}  # fmt: skip
AGENTS = {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
          "tools": [SPAWN, {"type": "function", "name": "close_agent", "parameters": {"type": "object"}}]}  # fmt: skip
MCP = {"type": "namespace", "name": "mcp__docs__", "description": "Docs server.",
       "tools": [{"type": "custom", "name": "query", "description": "Free text."}]}  # fmt: skip
EXEC = {"type": "function", "name": "exec_command", "parameters": {"type": "object"}}
# what Codex 0.171 sends unless `web_search = "disabled"`
WEB = {"type": "web_search", "external_web_access": True}
TOOLS = [EXEC, AGENTS, MCP, WEB]


def parse(**body: Any) -> Any:
    return parse_request({"model": "m", "input": "hi", **body})


def test_flat_name_joins_with_two_underscores_trimming_the_seam() -> None:
    assert flat_name("multi_agent_v1", "spawn_agent") == "multi_agent_v1__spawn_agent"
    assert flat_name("mcp__docs__", "query") == "mcp__docs__query"
    assert flat_name("ns_", "_x") == "ns__x"


def test_namespace_members_go_upstream_as_flat_function_tools_and_web_search_is_dropped() -> None:
    req = parse(tools=TOOLS)
    assert [t.name for t in req.tools] == [
        "exec_command", "multi_agent_v1__spawn_agent", "multi_agent_v1__close_agent", "mcp__docs__query"]  # fmt: skip
    spawn = req.tools[1]
    assert (spawn.description, spawn.parameters) == ("Start a sub-agent.", SPAWN["parameters"])
    assert req.tools[3].parameters["properties"] == {"input": {"type": "string"}}  # a custom member
    oa = openai_req.build_request(req, "up")
    assert [t["function"]["name"] for t in oa["tools"]] == [t.name for t in req.tools]
    assert oa["tools"][1]["function"]["parameters"] == SPAWN["parameters"]
    an = anthropic_req.build_request(req, "up", default_max_tokens=10)
    assert [t["name"] for t in an["tools"]] == [t.name for t in req.tools]
    assert echo_of(req)["tools"] == TOOLS  # the response repeats the tools as the client sent them


def test_calls_passed_back_with_a_namespace_are_flattened() -> None:
    req = parse(
        tools=[AGENTS, MCP],
        input=[{"role": "user", "content": "go"},
               {"type": "function_call", "call_id": "c1", "name": "spawn_agent", "namespace": "multi_agent_v1",
                "arguments": '{"task":"x"}'},
               {"type": "custom_tool_call", "call_id": "c2", "name": "query", "namespace": "mcp__docs__",
                "input": "q"},
               {"type": "function_call_output", "call_id": "c1", "output": "ok"},
               {"type": "custom_tool_call_output", "call_id": "c2", "output": "ok"}],
        tool_choice={"type": "function", "name": "close_agent", "namespace": "multi_agent_v1"},
    )  # fmt: skip
    assert req.messages[1].content == [
        ToolCallPart(id="c1", name="multi_agent_v1__spawn_agent", arguments='{"task":"x"}'),
        ToolCallPart(id="c2", name="mcp__docs__query", arguments='{"input":"q"}'),
    ]
    assert req.tool_choice is not None and req.tool_choice.name == "multi_agent_v1__close_agent"
    oa = openai_req.build_request(req, "up")
    assert [c["function"]["name"] for c in oa["messages"][1]["tool_calls"]] == [
        "multi_agent_v1__spawn_agent", "mcp__docs__query"]  # fmt: skip


@pytest.mark.parametrize(
    ("tools", "param", "says"),
    [
        ([{"type": "namespace", "name": "n"}], "tools[0].tools", "list"),
        ([{"type": "namespace", "tools": []}], "tools[0].name", "required"),
        ([{"type": "namespace", "name": "n", "tools": [WEB]}], "tools[0].tools[0].type", "namespace"),
        ([{"type": "namespace", "name": "n", "tools": [{"type": "function"}]}], "tools[0].tools[0].name", "required"),
        ([WEB, {"type": "file_search", "vector_store_ids": []}], "tools[1].type", "file_search"),
    ],
)
def test_malformed_namespaces_and_other_built_ins_are_400(tools: list[Any], param: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse(tools=tools)
    assert e.value.param == param and says in e.value.message


def test_forcing_web_search_is_still_refused() -> None:
    with pytest.raises(InvalidRequest) as e:
        parse(tools=[WEB], tool_choice={"type": "web_search"})
    assert e.value.param == "tool_choice"


def test_tool_names_map_flat_names_back() -> None:
    names = ToolNames(TOOLS)
    assert names.origin("multi_agent_v1__close_agent") == ("multi_agent_v1", "close_agent")
    assert names.origin("exec_command") == (None, "exec_command")
    assert names.custom == {"mcp__docs__query"}
    assert ToolNames(None).origin("x") == (None, "x")


def test_response_items_carry_the_members_own_name_and_namespace() -> None:
    req = parse(tools=TOOLS)
    content: list[Part] = [ToolCallPart(id="c1", name="multi_agent_v1__spawn_agent", arguments='{"task":"x"}'),
               ToolCallPart(id="c2", name="mcp__docs__query", arguments='{"input":"q"}'),
               ToolCallPart(id="c3", name="exec_command", arguments="{}")]  # fmt: skip
    resp = ChatResponse(id="u", model="u", content=content, stop_reason="tool_use", usage=Usage())
    body = build_response(resp, id="resp_9-x", model="m", created=1, echo=echo_of(req), cost=None)
    fc, ctc, plain = body["output"]
    assert fc == {"id": "fc_9-x_0", "type": "function_call", "status": "completed", "arguments": '{"task":"x"}',
                  "call_id": "c1", "name": "spawn_agent", "namespace": "multi_agent_v1"}  # fmt: skip
    assert ctc == {"id": "ctc_9-x_1", "type": "custom_tool_call", "call_id": "c2", "name": "query", "input": "q",
                   "namespace": "mcp__docs__"}  # fmt: skip
    assert plain["name"] == "exec_command" and "namespace" not in plain
    parsed = Response.model_validate(body)
    assert parsed.output[0].type == "function_call" and parsed.output[0].namespace == "multi_agent_v1"


def test_streamed_items_carry_the_namespace_on_added_and_done() -> None:
    req = parse(tools=TOOLS)
    enc = ResponsesStreamEncoder(id="resp_1-ab", model="m", created=1, echo=echo_of(req))
    events: list[StreamEvent] = [ToolCallStart(index=0, id="c1", name="multi_agent_v1__spawn_agent"),
              ToolCallDelta(index=0, arguments='{"task":'), ToolCallDelta(index=0, arguments='"x"}'),
              ToolCallStart(index=1, id="c2", name="mcp__docs__query"),
              ToolCallDelta(index=1, arguments='{"input":"q"}'),
              TextDelta(text="ok"), Finish(stop_reason="tool_use")]  # fmt: skip
    frames = [f for ev in events for f in enc.feed(ev)] + enc.end(Usage())
    evs, final = check_responses_stream(frames)
    added = [e["item"] for e in evs if e["type"] == "response.output_item.added"]
    done = [e["item"] for e in evs if e["type"] == "response.output_item.done"]
    assert [(i["type"], i.get("name"), i.get("namespace")) for i in added] == [
        ("function_call", "spawn_agent", "multi_agent_v1"), ("custom_tool_call", "query", "mcp__docs__"),
        ("message", None, None)]  # fmt: skip
    assert [(i.get("name"), i.get("namespace")) for i in done[:2]] == [
        ("spawn_agent", "multi_agent_v1"), ("query", "mcp__docs__")]  # fmt: skip
    assert done[0]["arguments"] == '{"task":"x"}' and done[1]["input"] == "q"
    assert final.output[0].type == "function_call" and final.output[0].namespace == "multi_agent_v1"
