"""The deployment files (Docker is not run here): the compose file parses and has two gateway
instances with two workers each, PostgreSQL, Redis and nginx; the Dockerfile runs as a non-root
user on a slim image with a HEALTHCHECK on /health/live and the gateway as PID 1."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_runs_two_gateways_with_two_workers_behind_nginx_on_postgres_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"gateway-1", "gateway-2", "postgres", "redis", "nginx"} <= services.keys()
    for name in ("gateway-1", "gateway-2"):
        gw = services[name]
        assert gw["command"][gw["command"].index("--workers") + 1] == "2"
        assert gw["build"]["dockerfile"] == "Dockerfile"
        assert (ROOT / "deploy" / gw["build"]["context"]).resolve() == ROOT
        assert gw["stop_grace_period"].rstrip("s").isdigit() and int(gw["stop_grace_period"].rstrip("s")) > 30
    cfg = yaml.safe_load((ROOT / "deploy" / "keeprouter.yaml").read_text())
    assert cfg["database"].startswith("postgresql://") and cfg["redis"].startswith("redis://")
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server gateway-1:8080" in nginx and "server gateway-2:8080" in nginx and "proxy_buffering off" in nginx


def test_dockerfile_is_slim_non_root_with_a_liveness_healthcheck() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip() and ln[0] != "#"]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert froms and all("-slim" in f for f in froms)
    user = [ln for ln in lines if ln.startswith("USER ")]
    assert user and user[-1].split()[1] not in ("root", "0")
    text = "\n".join(lines)
    assert "HEALTHCHECK" in text and "/health/live" in text
    entry = next(ln for ln in lines if ln.startswith("ENTRYPOINT"))
    assert entry.startswith('ENTRYPOINT ["keeprouter", "serve"')  # exec form: SIGTERM reaches the gateway
