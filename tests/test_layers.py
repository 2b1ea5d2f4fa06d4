"""Dependencies point one way: formats <- providers <- routing <- gateway <- api. A module may
import only the layers listed for it here; a new arrow is a design change, made here on purpose."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "keeprouter"
BASE = {"errors", "formats"}  # the canonical model and the error tree are everyone's vocabulary
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "formats": {"errors"},
    "catalogue": set(),
    # Provider kinds and their config keys, as data: read by config validation and the registry.
    "kinds": set(),
    "config": {"auth", "catalogue", "kinds"},
    # Every KEEPROUTER_* environment knob, typed; a bad value is a ConfigError like a bad config key.
    "settings": {"config"},
    "store": {"errors"},
    "limits": {"errors"},
    "billing": BASE | {"config", "store"},
    "providers": BASE | {"config", "kinds"},
    # Client translators (one folder + one ClientApi row per client API): pure, like formats.
    "clients": BASE,
    "routing": BASE | {"config"},
    "keys": {"errors", "billing", "store"},
    # Teams and users (validation, JSON shapes); the allowlists and user/team rate limits at admission.
    "people": {"errors", "billing", "keys", "store"},
    "policy": {"errors", "billing", "limits", "store"},
    "cli_people": {"errors", "people", "store"},
    # `catalogue import`: a model list read (catalogue.importer) and merged as text (catalogue.merge),
    # checked by the config loader before it is written.
    "cli_catalogue": {"catalogue", "config"},
    # OpenID Connect settings and protocol (Authlib, joserfc); its web routes live in web/oidc.py.
    "auth": set(),
    # Metrics, traces and log context: prometheus_client and OpenTelemetry behind small seams.
    "observe": set(),
    # The request path (gateway/, the live stream included).
    "gateway": BASE | {"config", "billing", "limits", "observe", "policy", "providers", "routing", "store"},
    # The readiness probe reads serving's draining flag (serving knows nothing of ours).
    "api": BASE
    | {"config", "billing", "gateway", "keys", "people", "routing", "serving", "store", "observe", "clients"},
    # The pages read the catalogue, the store's aggregates and live health; nothing imports them
    # but the app that mounts them.
    # The console (web/console*.py) signs in with the key service and shares the activity logic of
    # /api/v1/activity (api.activity.key_activity): one code path for both.
    # The one headline-price rule (billing.headline) is quoted by the pages and the JSON catalogue alike.
    "web": {"errors", "api", "auth", "billing", "config", "keys", "people", "routing", "store"},
    "app": {
        "api",
        "billing",
        "config",
        "gateway",
        "keys",
        "limits",
        "observe",
        "providers",
        "routing",
        "serving",
        "settings",
        "store",
        "web",
    },
    # Runs an app until signalled and drains it: knows aiohttp, nothing of ours.
    "serving": set(),
    # The supervisor of --workers: processes, sockets and a lock file; nothing of ours.
    "workers": set(),
    "cli": {
        "errors",
        "app",
        "cli_catalogue",
        "cli_people",
        "config",
        "keys",
        "observe",
        "people",
        "serving",
        "settings",
        "store",
        "workers",
    },
}


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module == "keeprouter":  # from keeprouter import workers
            names = [f"keeprouter.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for n in names:
            parts = n.split(".")
            if parts[0] == "keeprouter" and len(parts) > 1:
                out.add(parts[1])
    return out


MODULES = sorted(p for p in PKG.rglob("*.py") if _layer(p) not in {"__init__", "__main__"})


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_module_imports_only_its_allowed_layers(path: Path) -> None:
    layer = _layer(path)
    assert layer in ALLOWED, f"new top-level module {layer}: add it to ALLOWED"
    wrong = _imports(path) - ALLOWED[layer] - {layer}
    assert not wrong, f"{path.relative_to(PKG)} imports {sorted(wrong)}"


def test_every_allowed_arrow_is_used() -> None:
    """The allow-list only tightens: an arrow no module uses any more is removed, not kept in reserve."""
    used: dict[str, set[str]] = {layer: set() for layer in ALLOWED}
    for path in MODULES:
        used.setdefault(_layer(path), set()).update(_imports(path) - {_layer(path)})
    unused = {layer: sorted(ALLOWED[layer] - used[layer] - BASE) for layer in ALLOWED}
    left = {k: v for k, v in unused.items() if v}
    assert not left, f"arrows nobody uses: {left}"


def test_importing_keeprouter_has_no_side_effects() -> None:
    import subprocess
    import sys

    code = (
        "import socket, os\n"
        "def no(*a, **k): raise AssertionError('network at import time')\n"
        "socket.socket.connect = no\n"
        "import keeprouter.app, keeprouter.cli, keeprouter.gateway\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
