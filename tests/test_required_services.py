"""The required-services mode CI runs in: a missing PostgreSQL, Redis, redis-server or Chromium
skips a test on a developer's machine and fails it when KEEPROUTER_TEST_REQUIRE_SERVICES=1."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from store import backends
from support import browser, redis_server
from support.services import REQUIRE_SERVICES, service_missing, services_required

# The exceptions pytest.skip and pytest.fail raise (pytest's own names for them).
SKIPPED: type[BaseException] = pytest.skip.Exception
FAILED: type[BaseException] = pytest.fail.Exception


def _closed_port() -> int:
    return redis_server.free_port()  # nothing listens there once the probe socket is closed


@pytest.fixture(params=["skip", "fail"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type[BaseException]:
    """Each test runs on a developer's machine (a missing service skips) and in CI (it fails)."""
    if request.param == "fail":
        monkeypatch.setenv(REQUIRE_SERVICES, "1")
        return FAILED
    monkeypatch.delenv(REQUIRE_SERVICES, raising=False)
    return SKIPPED


@pytest.mark.parametrize(("value", "required"), [("", False), ("0", False), ("1", True), ("yes", True)])
def test_required_services_is_read_from_the_environment_at_each_call(
    monkeypatch: pytest.MonkeyPatch, value: str, required: bool
) -> None:
    monkeypatch.setenv(REQUIRE_SERVICES, value)
    assert services_required() is required


def test_a_required_service_fails_the_test_naming_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    with pytest.raises(FAILED) as failed:
        service_missing("PostgreSQL", "not reachable at postgresql://x")
    message = str(failed.value)
    assert "PostgreSQL not reachable at postgresql://x" in message and REQUIRE_SERVICES in message


async def test_unreachable_postgresql(monkeypatch: pytest.MonkeyPatch, mode: type[BaseException]) -> None:
    monkeypatch.setattr(backends, "PG_URL", f"postgresql://postgres@127.0.0.1:{_closed_port()}/test")
    with pytest.raises(mode, match="PostgreSQL not reachable"):
        async with backends.pg_schema():
            pass


async def test_unreachable_redis(monkeypatch: pytest.MonkeyPatch, mode: type[BaseException]) -> None:
    monkeypatch.setattr(redis_server, "SHARED_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    with pytest.raises(mode, match="Redis not reachable"):
        await redis_server.shared_client()


async def test_missing_redis_server_binary(monkeypatch: pytest.MonkeyPatch, mode: type[BaseException]) -> None:
    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return None

    monkeypatch.setattr(shutil, "which", which)  # the module support.redis_server looks it up in
    with pytest.raises(mode, match="redis-server is not installed"):
        await redis_server.PrivateRedis(_closed_port()).start()


async def test_missing_chromium(monkeypatch: pytest.MonkeyPatch, mode: type[BaseException]) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(mode, match="Chromium is absent"):
        async with browser.chromium():
            pass
