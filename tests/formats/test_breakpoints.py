"""Automatic cache breakpoints on the canonical request: where the one automatic breakpoint goes,
the provider's limit of 4, the request left untouched, and the 1-hour TTL rules."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.config import ConfigError, parse_config
from keeprouter.formats.breakpoints import count_breakpoints, uses_1h_cache, with_breakpoints
from keeprouter.formats.canonical import (
    ChatRequest,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)

EPH: dict[str, Any] = {"type": "ephemeral"}
HOUR: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}


def req(
    *messages: Message, system: list[TextPart] | None = None, tools: list[Tool] | None = None, **extra: Any
) -> ChatRequest:
    return ChatRequest(
        model="m", messages=list(messages), system=system or [], tools=tools or [], extra=extra, source="anthropic"
    )


def user(*parts: Any) -> Message:
    return Message(role="user", content=list(parts))


def assistant(*parts: Any) -> Message:
    return Message(role="assistant", content=list(parts))


def test_top_level_cache_control_marks_the_last_block_and_is_dropped() -> None:
    r = req(user(TextPart(text="first")), assistant(TextPart(text="reply")), user(TextPart(text="last")),
            system=[TextPart(text="sys")], cache_control=EPH)  # fmt: skip
    out = with_breakpoints(r)
    last = out.messages[-1].content[-1]
    assert isinstance(last, TextPart) and last.cache_control == EPH
    assert count_breakpoints(out) == 1 and "cache_control" not in out.extra
    # the caller's request is not changed (other endpoints may be tried with it)
    assert count_breakpoints(r) == 0 and r.extra == {"cache_control": EPH}


def test_reasoning_and_empty_text_are_skipped_and_text_after_tool_results_wins() -> None:
    call = ToolCallPart(id="t1", name="f", arguments="{}")
    result = ToolResultPart(tool_call_id="t1", content=[TextPart(text="42")])
    r = req(user(TextPart(text="q")), assistant(ThinkingPart(text="hm", signature="s", origin="anthropic"), call),
            user(TextPart(text="note"), result, TextPart(text="")), cache_control=EPH)  # fmt: skip
    out = with_breakpoints(r)
    marked = [p for p in out.messages[-1].content if getattr(p, "cache_control", None)]
    assert marked == [TextPart(text="note", cache_control=EPH)]  # the wire puts tool results first
    only_result = with_breakpoints(req(user(result), cache_control=EPH))
    assert only_result.messages[0].content[0] == ToolResultPart(
        tool_call_id="t1", content=[TextPart(text="42")], cache_control=EPH
    )
    trailing_thinking = with_breakpoints(req(assistant(call, ThinkingPart(text="x")), cache_control=EPH))
    assert trailing_thinking.messages[0].content[0] == ToolCallPart(
        id="t1", name="f", arguments="{}", cache_control=EPH
    )


def test_no_message_block_falls_back_to_system_then_tools() -> None:
    sys_only = with_breakpoints(req(system=[TextPart(text="a"), TextPart(text="b")], cache_control=EPH))
    assert [s.cache_control for s in sys_only.system] == [None, EPH]
    tools_only = with_breakpoints(req(tools=[Tool(name="f"), Tool(name="g")], cache_control=EPH))
    assert [t.cache_control for t in tools_only.tools] == [None, EPH]
    assert count_breakpoints(with_breakpoints(req(cache_control=EPH))) == 0


def test_the_ttl_is_the_callers_unless_a_shorter_breakpoint_comes_before() -> None:
    out = with_breakpoints(req(user(TextPart(text="q")), cache_control=HOUR))
    assert out.messages[0].content[0] == TextPart(text="q", cache_control=HOUR)
    # a 1-hour breakpoint may not follow a 5-minute one: the automatic one drops to 5 minutes
    mixed = req(user(TextPart(text="q")), system=[TextPart(text="s", cache_control=EPH)], cache_control=HOUR)
    assert with_breakpoints(mixed).messages[0].content[0] == TextPart(text="q", cache_control=EPH)
    after_hour = req(user(TextPart(text="q")), system=[TextPart(text="s", cache_control=HOUR)], cache_control=HOUR)
    assert with_breakpoints(after_hour).messages[0].content[0] == TextPart(text="q", cache_control=HOUR)


def test_an_already_marked_last_block_gets_no_second_breakpoint() -> None:
    r = req(user(TextPart(text="q", cache_control=HOUR)), cache_control=EPH)
    out = with_breakpoints(r)
    assert out.messages[0].content[0] == TextPart(text="q", cache_control=HOUR) and count_breakpoints(out) == 1


def test_never_more_than_four_the_automatic_one_never_displaces_the_callers() -> None:
    four = [TextPart(text=f"s{i}", cache_control=EPH) for i in range(4)]
    out = with_breakpoints(req(user(TextPart(text="q")), system=four, cache_control=EPH))
    assert count_breakpoints(out) == 4 and out.messages[0].content[0].cache_control is None  # type: ignore[union-attr]
    three = [TextPart(text=f"s{i}", cache_control=EPH) for i in range(3)]
    out = with_breakpoints(req(user(TextPart(text="q")), system=three, cache_control=EPH))
    assert count_breakpoints(out) == 4 and out.messages[0].content[0].cache_control == EPH  # type: ignore[union-attr]


def test_a_caller_over_the_limit_keeps_its_latest_four() -> None:
    img = ImagePart(url="https://x.example/a.png", cache_control=EPH)
    nested = ToolResultPart(tool_call_id="t", content=[TextPart(text="r", cache_control=EPH)], cache_control=EPH)
    r = req(user(img, nested, TextPart(text="q", cache_control=EPH)), system=[TextPart(text="s", cache_control=EPH)],
            tools=[Tool(name="f", cache_control=EPH)])  # fmt: skip
    assert count_breakpoints(r) == 6
    out = with_breakpoints(r)
    assert count_breakpoints(out) == 4
    assert out.tools[0].cache_control is None and out.system[0].cache_control is None
    assert count_breakpoints(r) == 6  # untouched
    assert count_breakpoints(with_breakpoints(r, limit=2)) == 2


def test_model_auto_breakpoint_marks_only_requests_without_their_own() -> None:
    bare = req(user(TextPart(text="q")))
    assert with_breakpoints(bare) is bare  # nothing asked, nothing to do: no copy
    assert with_breakpoints(bare, auto=True).messages[0].content[0] == TextPart(text="q", cache_control=EPH)
    own = req(user(TextPart(text="q")), system=[TextPart(text="s", cache_control=HOUR)])
    assert with_breakpoints(own, auto=True) is own


def test_uses_1h_cache() -> None:
    assert not uses_1h_cache(req(user(TextPart(text="q", cache_control=EPH))))
    assert uses_1h_cache(req(user(TextPart(text="q")), cache_control=HOUR))
    assert uses_1h_cache(req(user(TextPart(text="q")), system=[TextPart(text="s", cache_control=HOUR)]))
    nested = ToolResultPart(tool_call_id="t", content=[TextPart(text="r", cache_control=HOUR)])
    assert uses_1h_cache(req(user(nested)))


# ---- the model's `cache:` config -----------------------------------------------------------------


def _model(cache: object) -> Any:
    raw = {
        "providers": {"p": {"api": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": "k"}},
        "models": {
            "m": {"cache": cache, "endpoints": [{"provider": "p", "model": "m", "pricing": {"input": 1, "output": 1}}]}
        },
    }
    return parse_config(raw, env={}).models["m"]


def test_model_cache_auto_breakpoint_reaches_its_endpoints() -> None:
    m = _model({"auto_breakpoint": True})
    assert m.auto_breakpoint and all(ep.auto_breakpoint for ep in m.endpoints)
    off = _model(None)
    assert not off.auto_breakpoint and not off.endpoints[0].auto_breakpoint


def test_bad_model_cache_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^models\.m\.cache\.auto_breakpoint: must be true or false"):
        _model({"auto_breakpoint": "yes"})
    with pytest.raises(ConfigError, match=r"^models\.m\.cache\.ttl: unknown key"):
        _model({"ttl": "1h"})
    with pytest.raises(ConfigError, match=r"^models\.m\.cache: must be a mapping"):
        _model(True)
