"""What the suite needs from the machine: the PostgreSQL and Redis servers, `redis-server` for the
tests that stop and start their own, and Chromium for the page tests.

On a developer's machine a test that cannot reach one is skipped (`-rs` lists why). In CI
(`.ci/run` sets KEEPROUTER_TEST_REQUIRE_SERVICES=1) the same test fails with a message naming the
service: a machine without PostgreSQL must not pass by skipping every test that needed it.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_SERVICES = "KEEPROUTER_TEST_REQUIRE_SERVICES"


def services_required() -> bool:
    """True when every service must be there (read at each call, so a test may set it)."""
    return os.environ.get(REQUIRE_SERVICES, "").strip() not in ("", "0")


def service_missing(service: str, detail: str) -> NoReturn:
    """Skip the test because `service` is missing, or fail it when services are required."""
    message = f"{service} {detail}"
    if services_required():
        pytest.fail(f"{message} ({REQUIRE_SERVICES} is set: this run needs {service}, skipping is not allowed)",
                    pytrace=False)  # fmt: skip
    pytest.skip(message)
