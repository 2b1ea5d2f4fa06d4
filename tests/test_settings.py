"""keeprouter.settings: every KEEPROUTER_* knob read once, typed and validated; a bad value stops
start-up with one line naming the variable, as a bad config key does."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from keeprouter import settings as settings_mod
from keeprouter.api.http import STATE
from keeprouter.api.stats import HEALTH_FLUSH_SECONDS
from keeprouter.app import create_app, spool_dir
from keeprouter.billing.ledger import DEFAULT_HOLD_TTL
from keeprouter.cli import main, resolve_admin_key
from keeprouter.config import ConfigError, parse_config
from keeprouter.gateway import Gateway
from keeprouter.routing.affinity import DEFAULT_MAX_ENTRIES, MemoryAffinity
from keeprouter.routing.health import HealthTracker
from keeprouter.serving import DEFAULT_GRACE
from keeprouter.settings import Settings, load_settings

VARIABLES = re.findall(r'"(KEEPROUTER_\w+)"', inspect.getsource(load_settings))
SECONDS = [
    "KEEPROUTER_SETTLE_WAIT_SECONDS", "KEEPROUTER_HOLD_TTL", "KEEPROUTER_HOLD_SWEEP_SECONDS",
    "KEEPROUTER_HEALTH_FLUSH_SECONDS", "KEEPROUTER_CIRCUIT_COOLDOWN_SECONDS", "KEEPROUTER_SHUTDOWN_SECONDS",
]  # fmt: skip


def test_defaults() -> None:
    s = load_settings({})
    assert s == Settings()
    assert (s.config_path, s.admin_key, s.redis_prefix, s.spool_dir) == (None, None, None, None)
    assert (s.log_format, s.metrics_public, s.worker_socket) == ("text", False, "shared")
    assert (s.settle_wait, s.hold_ttl, s.hold_sweep, s.health_flush, s.circuit_cooldown, s.shutdown_grace) == (
        5.0, 900.0, 60.0, 60.0, 30.0, 30.0,
    )  # fmt: skip


def test_the_defaults_are_those_of_the_parts_they_configure() -> None:
    s = Settings()
    assert s.settle_wait == inspect.signature(Gateway).parameters["settle_wait"].default
    assert s.hold_ttl == DEFAULT_HOLD_TTL
    assert s.health_flush == HEALTH_FLUSH_SECONDS
    assert s.circuit_cooldown == HealthTracker().cooldown
    assert s.shutdown_grace == DEFAULT_GRACE
    assert s.affinity_max_entries == DEFAULT_MAX_ENTRIES


def test_every_value_is_read() -> None:
    env = {
        "KEEPROUTER_CONFIG": "/etc/kr.yaml", "KEEPROUTER_ADMIN_KEY": "sk-adm", "KEEPROUTER_LOG_FORMAT": "json",
        "KEEPROUTER_METRICS_PUBLIC": "1", "KEEPROUTER_SETTLE_WAIT_SECONDS": "0.5", "KEEPROUTER_HOLD_TTL": "120",
        "KEEPROUTER_HOLD_SWEEP_SECONDS": "2", "KEEPROUTER_HEALTH_FLUSH_SECONDS": "0.02",
        "KEEPROUTER_CIRCUIT_COOLDOWN_SECONDS": "1e1", "KEEPROUTER_SHUTDOWN_SECONDS": "3",
        "KEEPROUTER_REDIS_PREFIX": "t1:", "KEEPROUTER_SPOOL_DIR": "/var/spool/kr",
        "KEEPROUTER_WORKER_SOCKET": "reuseport", "KEEPROUTER_AFFINITY_MAX_ENTRIES": "500",
    }  # fmt: skip
    assert sorted(env) == sorted(VARIABLES)
    assert load_settings(env) == Settings(
        config_path="/etc/kr.yaml", admin_key="sk-adm", log_format="json", metrics_public=True, settle_wait=0.5,
        hold_ttl=120.0, hold_sweep=2.0, health_flush=0.02, circuit_cooldown=10.0, shutdown_grace=3.0,
        redis_prefix="t1:", spool_dir=Path("/var/spool/kr"), worker_socket="reuseport", affinity_max_entries=500,
    )  # fmt: skip


def test_every_field_has_its_variable_and_every_variable_is_documented() -> None:
    assert len(VARIABLES) == len(set(VARIABLES)) == len(dataclasses.fields(Settings))
    doc = settings_mod.__doc__ or ""
    for name in VARIABLES:
        assert re.search(rf"^{name} \(default: ", doc, re.M), name


def test_an_empty_value_is_unset() -> None:
    assert load_settings(dict.fromkeys(VARIABLES, "")) == Settings()


@pytest.mark.parametrize(("raw", "public"), [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False)])
def test_metrics_public_flag(raw: str, public: bool) -> None:
    assert load_settings({"KEEPROUTER_METRICS_PUBLIC": raw}).metrics_public is public


BAD = [
    *((name, raw) for name in SECONDS for raw in ("soon", "-1", "0", "inf", "nan")),
    ("KEEPROUTER_LOG_FORMAT", "xml"),
    ("KEEPROUTER_LOG_FORMAT", "JSON"),
    ("KEEPROUTER_WORKER_SOCKET", "fork"),
    ("KEEPROUTER_METRICS_PUBLIC", "maybe"),
    *(("KEEPROUTER_AFFINITY_MAX_ENTRIES", raw) for raw in ("0", "-5", "lots", "1.5", "1e3")),
]


@pytest.mark.parametrize(("name", "raw"), BAD)
def test_a_bad_value_is_a_config_error_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({name: raw})
    message = str(e.value)
    assert message.startswith(f"{name}: ") and repr(raw) in message and "\n" not in message


def test_a_value_with_a_newline_still_makes_one_line() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({"KEEPROUTER_HOLD_TTL": "1\n2"})
    assert "\n" not in str(e.value)


def test_importing_reads_no_environment() -> None:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "KEEPROUTER_HOLD_TTL": "soon", "KEEPROUTER_LOG_FORMAT": "xml", "PYTHONPATH": root}
    code = "import keeprouter.settings, keeprouter.app, keeprouter.cli"
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


# ---- start-up ------------------------------------------------------------------------------------------


def test_serve_stops_at_start_up_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[1])  # this checkout's package, whatever the cwd
    env = {**os.environ, "KEEPROUTER_HOLD_TTL": "soon", "PYTHONPATH": root}
    r = subprocess.run(
        [sys.executable, "-m", "keeprouter", "serve", "--port", "9"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2  # as for a bad config
    assert r.stderr.strip().count("\n") == 0
    assert (
        r.stderr.strip()
        == "keeprouter: config error: KEEPROUTER_HOLD_TTL: must be a positive number of seconds, not 'soon'"
    )
    assert not (tmp_path / "keeprouter.db").exists()  # stopped before anything was created


@pytest.mark.parametrize("command", [["check-config"], ["keys", "list"]])
def test_every_command_checks_the_settings(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(command, env={"KEEPROUTER_WORKER_SOCKET": "fork"})
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == "keeprouter: config error: KEEPROUTER_WORKER_SOCKET: must be one of shared, reuseport, not 'fork'\n"


def test_the_config_path_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "kr.yaml"
    f.write_text(f"database: sqlite:///{tmp_path / 'kr.db'}\n")
    main(["check-config"], env={"KEEPROUTER_CONFIG": str(f)})
    assert capsys.readouterr().out.startswith("ok: ")
    with pytest.raises(SystemExit) as e:
        main(["check-config"], env={"KEEPROUTER_CONFIG": str(tmp_path / "missing.yaml")})
    assert e.value.code == 2 and "cannot read" in capsys.readouterr().err


def test_the_admin_key_setting_comes_after_the_config_files(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'kr.db'}"
    assert resolve_admin_key(parse_config({"database": db}, env={}), "sk-env") == "sk-env"
    assert resolve_admin_key(parse_config({"database": db, "admin_key": "sk-file"}, env={}), "sk-env") == "sk-file"
    assert not (tmp_path / "keeprouter.admin_key").exists()
    # the config file no longer reads the variable itself: one reader, the settings
    assert parse_config({"database": db}, env={"KEEPROUTER_ADMIN_KEY": "sk-env"}).admin_key is None


async def test_create_app_wires_the_settings(tmp_path: Path) -> None:
    config = parse_config({"database": f"sqlite:///{tmp_path / 'kr.db'}"}, env={})
    s = Settings(settle_wait=0.25, circuit_cooldown=7.0, metrics_public=True, affinity_max_entries=7)
    server = TestServer(create_app(config, "sk-kr-admin-test", settings=s), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        state = server.app[STATE]
        assert state.gateway.settle_wait == 0.25
        assert state.health.cooldown == 7.0
        assert state.gateway.metrics is not None and state.gateway.metrics.public
        table = state.gateway.sticky.table
        assert isinstance(table, MemoryAffinity) and table.max_entries == 7
    finally:
        await server.close()


def test_the_spool_dir_setting() -> None:
    root = Path("/var/spool/kr")
    assert spool_dir("sqlite:///a.db", root).parent == root
    assert spool_dir("sqlite:///a.db", root) != spool_dir("sqlite:///b.db", root)  # one per database
    assert spool_dir("sqlite:///a.db", None).parent == Path.home() / ".local" / "state" / "keeprouter" / "spool"


def test_create_app_without_settings_reads_the_environment_then(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPROUTER_SETTLE_WAIT_SECONDS", "-3")
    with pytest.raises(ConfigError, match="KEEPROUTER_SETTLE_WAIT_SECONDS"):
        create_app(parse_config({}, env={}), "sk-kr-admin-test")


def test_serve_hands_the_worker_socket_mode_to_the_supervisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keeprouter import workers

    seen: list[tuple[object, ...]] = []

    def supervise(*args: object) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(workers, "supervise", supervise)
    root = logging.getLogger()  # serve configures the root logger: undone after the test
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "kr.yaml"
    f.write_text("database: postgresql://nobody@127.0.0.1:9/none\nadmin_key: sk-kr-admin-test\n")
    with pytest.raises(SystemExit) as e:
        main(["serve", "--workers", "2", "--config", str(f)], env={"KEEPROUTER_WORKER_SOCKET": "reuseport"})
    assert e.value.code == 0
    assert seen and seen[0][-1] == "reuseport"
