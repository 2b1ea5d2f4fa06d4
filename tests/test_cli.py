"""The CLI: fail-closed admin key bootstrap, and `keeprouter serve` with no config at all."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keeprouter.cli import resolve_admin_key
from keeprouter.config import parse_config


def test_first_start_generates_an_admin_key_kept_0600_and_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = parse_config({"database": f"sqlite:///{tmp_path / 'kr.db'}"}, env={})
    key = resolve_admin_key(cfg)
    path = tmp_path / "keeprouter.admin_key"
    assert path.read_text().strip() == key and key.startswith("sk-kr-admin-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key in capsys.readouterr().err
    assert resolve_admin_key(cfg) == key  # the next start reuses it, silently
    assert key not in capsys.readouterr().err


def test_configured_admin_key_wins(tmp_path: Path) -> None:
    cfg = parse_config({"database": f"sqlite:///{tmp_path / 'kr.db'}", "admin_key": "sk-mine"}, env={})
    assert resolve_admin_key(cfg) == "sk-mine"
    assert not (tmp_path / "keeprouter.admin_key").exists()


def test_serve_starts_with_no_config_and_answers_health(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "KEEPROUTER_CONFIG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keeprouter", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/models", timeout=2) as r:
            assert r.status == 200
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=2)
        assert e.value.code == 401  # fail closed: no key, no service
        e.value.close()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert (tmp_path / "keeprouter.db").exists()
    assert (tmp_path / "keeprouter.admin_key").exists()
    assert b"sk-kr-admin-" in err


def test_bad_config_stops_start_up_with_one_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("providers:\n  p:\n    api: grpc\n    base_url: http://x\n")
    r = subprocess.run(
        [sys.executable, "-m", "keeprouter", "serve", "--config", str(f)], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "providers.p.api" in r.stderr
