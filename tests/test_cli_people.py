"""`keeprouter teams` and `keeprouter users` on the configured database, and `keys create --user`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from keeprouter.cli import main


def run(cfg: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    main(["--config", str(cfg), *argv])
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_teams_and_users_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "keeprouter.yaml"
    cfg.write_text(yaml.safe_dump({"database": f"sqlite:///{tmp_path / 'cli.db'}"}))
    team = run(cfg, capsys, "teams", "create", "--name", "Ops", "--limit", "20", "--limit-reset", "weekly",
               "--models", "a/one,b/two", "--rpm-limit", "10")["data"]  # fmt: skip
    assert isinstance(team, dict)
    assert (team["name"], team["limit"], team["limit_reset"], team["models"], team["rpm_limit"]) == (
        "Ops", 20, "weekly", ["a/one", "b/two"], 10,
    )  # fmt: skip
    user = run(cfg, capsys, "users", "create", "--email", "ops@example.com", "--team", team["id"], "--team-admin")
    data = user["data"]
    assert isinstance(data, dict) and data["team_id"] == team["id"] and data["team_admin"] is True
    listed = run(cfg, capsys, "users", "list", "--team", team["id"])["data"]
    assert isinstance(listed, list) and [u["email"] for u in listed] == ["ops@example.com"]
    assert [t["id"] for t in run(cfg, capsys, "teams", "list")["data"]] == [team["id"]]  # type: ignore[attr-defined]

    main(["--config", str(cfg), "keys", "create", "--name", "k", "--user", data["id"]])
    assert capsys.readouterr().out.startswith("sk-kr-")
    keys = run(cfg, capsys, "keys", "list")["data"]
    assert isinstance(keys, list) and (keys[-1]["user_id"], keys[-1]["team_id"]) == (data["id"], team["id"])

    with pytest.raises(SystemExit):  # no such team: one line, no traceback
        main(["--config", str(cfg), "users", "create", "--email", "x@example.com", "--team", "team_nope"])
    assert "team_id" in capsys.readouterr().err
