"""Failures in the caller's own form: upstream errors as the client API's error shape and status,
an upstream that dies mid-stream as the API's in-stream error, unknown models and bad keys."""

from __future__ import annotations

import pytest
from upstreams.script import Fault, Reply

from scenarios.client_api import ClientApi
from scenarios.conftest import World
from scenarios.neutral import Ask, Msg
from scenarios.rows import Case, api_cases, cases

pytestmark = pytest.mark.asyncio(loop_scope="module")

HI = Ask(messages=(Msg("user", "Hi"),))
LONG = "abcdefghijklmnopqrstuvwxyz" * 4

# upstream status -> the status the caller gets (an upstream's server error is the gateway's 502)
STATUSES = {400: 400, 429: 429, 500: 502}


@pytest.mark.parametrize("status", list(STATUSES))
@cases("upstream-error")
async def test_upstream_error_in_callers_shape(world: World, case: Case, status: int) -> None:
    lane = world.lane(case)
    headers = {"retry-after": "7"} if status == 429 else {}
    lane.script(Fault(status=status, headers=headers))
    r = await world.send(case, HI)
    assert r.error is not None, r
    assert r.error.status == STATUSES[status]
    assert r.error.shape == case.api.error_shape
    assert r.error.message
    assert r.error.retry_after == headers.get("retry-after")
    assert len(lane.generations()) == 1  # one attempt, no silent retry
    assert lane.sent().stream is case.stream


MID_STREAM = {
    "cut": Fault(cut_after_chunks=6, reply=Reply(text=LONG, chunk_size=2)),
    "error-event": Fault(stream_error_after=6, reply=Reply(text=LONG, chunk_size=2)),
    "malformed-event": Fault(malformed="json", malformed_after=6, reply=Reply(text=LONG, chunk_size=2)),
}


@pytest.mark.parametrize("fault", list(MID_STREAM))
@cases("mid-stream", streams=(True,))
async def test_upstream_dying_mid_stream_ends_the_stream_with_an_error(world: World, case: Case, fault: str) -> None:
    lane = world.lane(case)
    lane.script(MID_STREAM[fault])
    r = await world.send(case, HI)
    assert r.error is not None, r
    assert r.error.status is None  # the 200 was committed: the error comes inside the stream
    assert r.error.shape == case.api.stream_error_shape
    assert r.error.message
    assert r.text and LONG.startswith(r.text) and len(r.text) < len(LONG)
    [rec] = lane.generations()  # one attempt: a committed stream is never retried
    assert rec.chunks_sent >= 6 and not rec.completed


@api_cases("unknown-model")
async def test_unknown_model_is_404(world: World, api: ClientApi, stream: bool) -> None:
    r = await world.send_as(api, stream, HI, "no-such-model")
    assert r.error is not None and r.error.status == 404
    assert r.error.shape == api.error_shape
    assert "no-such-model" in r.error.message
    assert not any(lane.generations() for lane in world.lanes.values())


@api_cases("bad-key")
async def test_bad_key_is_401(world: World, api: ClientApi, stream: bool) -> None:
    r = await world.send_as(api, stream, HI, next(iter(world.lanes.values())).model, key="sk-kr-wrong")
    assert r.error is not None and r.error.status == 401
    assert r.error.shape == api.error_shape
    assert not any(lane.generations() for lane in world.lanes.values())
