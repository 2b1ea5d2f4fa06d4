"""The transport below the adapters, through the fake `Send`: framing errors, bounded error bodies,
status mapping, credential redaction, and every answer released."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator

import pytest
from support.fake_transport import KEY, FakeRequest, FakeResponse, FakeTransport, endpoint, provider

from keeprouter.errors import UpstreamError, UpstreamTimeout
from keeprouter.formats import sse
from keeprouter.providers.framing import Frame
from keeprouter.providers.transport import Transport, provider_secrets

P = provider("openai")
EP = endpoint(P)


async def _frames(reads: AsyncGenerator[list[Frame], None]) -> list[Frame]:
    out: list[Frame] = []
    async for frames in reads:
        assert frames, "a read that completed no frame is not yielded"
        out += frames
    return out


def _fixed(answer: FakeResponse) -> FakeTransport:
    return FakeTransport(P, lambda req: answer)


async def test_post_stream_yields_the_frames_of_the_body() -> None:
    t = _fixed(FakeResponse(body=[b"event: e\nda", b"ta: 1\n\ndata: 2\n", b"\n"]))
    assert await _frames(t.post_stream_reads("http://u/x", b"{}", {"A": "b"}, EP.timeout)) == [
        ("e", b"1"),
        (None, b"2"),
    ]
    assert t.requests == [FakeRequest("POST", "http://u/x", {"A": "b"}, b"{}")]
    assert t.answers[0].closed


async def test_bytes_the_framing_refuses_are_an_invalid_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_LINE", 8)
    t = _fixed(FakeResponse(body=[b"data: " + b"x" * 64]))
    with pytest.raises(UpstreamError, match="fake-openai sent an invalid stream"):
        await _frames(t.post_stream_reads("http://u", b"", {}, EP.timeout))
    assert t.answers[0].closed


async def test_a_streamed_error_body_is_read_only_up_to_the_bound() -> None:
    pulled: list[int] = []

    def endless() -> Iterator[bytes]:
        while len(pulled) < 10_000:
            pulled.append(1)
            yield b"x" * 1000

    t = _fixed(FakeResponse(status=500, body=endless()))
    with pytest.raises(UpstreamError, match="failed with HTTP 500"):
        await _frames(t.post_stream_reads("http://u", b"", {}, EP.timeout))
    assert len(pulled) == 66  # 64 KiB, not the whole body
    assert t.answers[0].closed


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (403, UpstreamError, "rejected KeepRouter's credentials"),
        (408, UpstreamTimeout, "timed out"),
        (413, UpstreamError, "boom"),
        (503, UpstreamError, "is overloaded"),
        (500, UpstreamError, "failed with HTTP 500"),
    ],
)
async def test_status_mapping(status: int, kind: type[UpstreamError], words: str) -> None:
    t = _fixed(FakeResponse.json({"error": {"message": "boom"}}, status=status))
    with pytest.raises(kind, match=words):
        await t.post_json("http://u", b"", {}, EP.timeout)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
async def test_post_json_refuses_an_answer_that_is_not_a_json_object(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="returned invalid JSON"):
        await _fixed(FakeResponse(body=body)).post_json("http://u", b"", {}, EP.timeout)


async def test_a_plain_text_error_body_is_the_message() -> None:
    with pytest.raises(UpstreamError, match="upstream said no"):
        await _fixed(FakeResponse(status=502, body=b"upstream said no")).post_json("http://u", b"", {}, EP.timeout)


async def test_a_connection_cut_before_the_answer_is_an_upstream_error() -> None:
    t = _fixed(FakeResponse(body=[b'{"a": '], cut=True))
    with pytest.raises(UpstreamError, match="connection to provider fake-openai failed"):
        await t.post_json("http://u", b"", {}, EP.timeout)


async def test_secrets_of_a_kind_s_own_keys_are_redacted_too() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    p = provider("openai", options={"aws_secret_access_key": secret, "region": "us-east-1"})
    assert secret in provider_secrets(p) and "us-east-1" not in provider_secrets(p)
    t = FakeTransport(p, lambda req: FakeResponse.json({"error": {"message": f"{secret} / {KEY}"}}, status=400))
    with pytest.raises(UpstreamError) as info:
        await t.post_json("http://u", b"", {}, EP.timeout)
    assert info.value.message == "[REDACTED] / [REDACTED]"


def test_the_default_framing_is_sse() -> None:
    assert Transport(P).framing is sse.SSEFrameParser


class _Credentials:
    """A `RequestAuth` whose token changes after a 401, as a refreshed OAuth token would."""

    def __init__(self) -> None:
        self.token = "t1"
        self.refusals = 0

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def refused(self) -> None:
        self.refusals += 1
        self.token = "t2"


async def test_an_authorised_transport_adds_the_credentials_to_every_request_and_reports_a_401() -> None:
    answers = iter([FakeResponse.json({"error": {"message": "expired"}}, 401), FakeResponse.json({})])
    t = FakeTransport(P, lambda req: next(answers))
    creds = _Credentials()
    t.authorise(creds)
    with pytest.raises(UpstreamError, match="rejected KeepRouter's credentials"):
        await t.post_json("http://u/a", b"{}", {"A": "b", "Authorization": "caller's"}, EP.timeout)
    assert creds.refusals == 1
    await t.post_json("http://u/b", b"{}", {"A": "b"}, EP.timeout)
    assert [r.headers for r in t.requests] == [
        {"A": "b", "Authorization": "Bearer t1"},
        {"A": "b", "Authorization": "Bearer t2"},
    ]
    assert creds.refusals == 1
