"""Every `KEEPROUTER_*` environment knob, read once into one frozen, typed, validated `Settings`.

`load_settings(env)` builds it from an environment mapping: the CLI passes `os.environ` at start-up,
`create_app` reads the environment when it is handed no settings (so a test may set a variable
first); importing this module reads nothing. A bad value raises `ConfigError`, the error a bad config
key raises, with one line naming the variable: `keeprouter serve` (and every other command) prints
`keeprouter: config error: KEEPROUTER_HOLD_TTL: must be a positive number of seconds, not 'soon'`
and exits with status 2. An empty value counts as unset (as `VAR=` in a compose file means).

KEEPROUTER_CONFIG (default: none, the built-in catalogue only)
    The config file, when `--config` is not given.
KEEPROUTER_ADMIN_KEY (default: none)
    The admin key. The config file's `admin_key` wins over it; with neither, a key is generated on
    first start and kept beside the database (mode 0600).
KEEPROUTER_LOG_FORMAT (default: `text`)
    `text` or `json` (one object per line, carrying the generation id); `--log-format` wins over it.
KEEPROUTER_METRICS_PUBLIC (default: `0`)
    `1` (or true, yes, on): `/metrics` is readable without the admin key, for a scraper on a private
    network. `0` (or false, no, off): admin key only.
KEEPROUTER_SETTLE_WAIT_SECONDS (default: 5)
    How long an answer's last byte waits for its ledger write; then it goes anyway and the write
    goes on.
KEEPROUTER_HOLD_TTL (default: 900)
    Seconds a credit hold lives. The sweep returns the credit of older holds (those a killed
    gateway left), so keep it longer than any request may live.
KEEPROUTER_HOLD_SWEEP_SECONDS (default: 60)
    Seconds between two sweeps of expired credit holds.
KEEPROUTER_HEALTH_FLUSH_SECONDS (default: 60)
    Seconds between two writes of endpoint health (uptime, latency) to the database.
KEEPROUTER_CIRCUIT_COOLDOWN_SECONDS (default: 30)
    Seconds an open endpoint circuit waits before its half-open probe.
KEEPROUTER_SHUTDOWN_SECONDS (default: 30)
    Seconds a signalled server waits for requests in flight before it exits.
KEEPROUTER_REDIS_PREFIX (default: none: rate limits under `keeprouter:rl:`, circuits under `keeprouter:hl:`)
    Prefix of every Redis key this gateway writes (rate limits under it, circuits under it + `hl:`,
    conversation affinities under it + `af:`), so several deployments can share one Redis.
KEEPROUTER_AFFINITY_MAX_ENTRIES (default: 100000)
    How many conversations a process remembers the endpoint of (conversation affinity, kept in
    memory without Redis or while Redis does not answer); the least recently used go first.
KEEPROUTER_SPOOL_DIR (default: `~/.local/state/keeprouter/spool`)
    Where settles the database refused wait to be replayed, one subdirectory per database URL.
KEEPROUTER_WORKER_SOCKET (default: `shared`)
    With `--workers N`: `shared` (the workers accept on the supervisor's socket) or `reuseport`
    (each worker binds the port with SO_REUSEPORT).

Every duration is a positive, finite number of seconds (`0.5` is fine). Not knobs: the supervisor of
`--workers` sets KEEPROUTER_WORKER and KEEPROUTER_WORKER_FD in its workers (keeprouter.workers), and
KEEPROUTER_API_KEY is the variable the pages' code samples read a client's key from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from keeprouter.config import ConfigError

LogFormat = Literal["text", "json"]
WorkerSocket = Literal["shared", "reuseport"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
WORKER_SOCKETS: tuple[WorkerSocket, ...] = ("shared", "reuseport")
_T = TypeVar("_T", bound=str)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class Settings:
    """The knobs' values (see the module docstring); the defaults are the table's."""

    config_path: str | None = None
    admin_key: str | None = None
    log_format: LogFormat = "text"
    metrics_public: bool = False
    settle_wait: float = 5.0
    hold_ttl: float = 15 * 60.0
    hold_sweep: float = 60.0
    health_flush: float = 60.0
    circuit_cooldown: float = 30.0
    shutdown_grace: float = 30.0
    redis_prefix: str | None = None  # None: each Redis user's own default prefix
    affinity_max_entries: int = 100_000
    spool_dir: Path | None = None  # None: ~/.local/state/keeprouter/spool
    worker_socket: WorkerSocket = "shared"


def load_settings(env: Mapping[str, str]) -> Settings:
    """`Settings` from `env` (e.g. `os.environ`); ConfigError naming the variable for a bad value."""
    d = Settings()
    spool = _text(env, "KEEPROUTER_SPOOL_DIR")
    return Settings(
        config_path=_text(env, "KEEPROUTER_CONFIG"),
        admin_key=_text(env, "KEEPROUTER_ADMIN_KEY"),
        log_format=_choice(env, "KEEPROUTER_LOG_FORMAT", LOG_FORMATS, d.log_format),
        metrics_public=_flag(env, "KEEPROUTER_METRICS_PUBLIC", d.metrics_public),
        settle_wait=_seconds(env, "KEEPROUTER_SETTLE_WAIT_SECONDS", d.settle_wait),
        hold_ttl=_seconds(env, "KEEPROUTER_HOLD_TTL", d.hold_ttl),
        hold_sweep=_seconds(env, "KEEPROUTER_HOLD_SWEEP_SECONDS", d.hold_sweep),
        health_flush=_seconds(env, "KEEPROUTER_HEALTH_FLUSH_SECONDS", d.health_flush),
        circuit_cooldown=_seconds(env, "KEEPROUTER_CIRCUIT_COOLDOWN_SECONDS", d.circuit_cooldown),
        shutdown_grace=_seconds(env, "KEEPROUTER_SHUTDOWN_SECONDS", d.shutdown_grace),
        redis_prefix=_text(env, "KEEPROUTER_REDIS_PREFIX"),
        affinity_max_entries=_count(env, "KEEPROUTER_AFFINITY_MAX_ENTRIES", d.affinity_max_entries),
        spool_dir=Path(spool) if spool else None,
        worker_socket=_choice(env, "KEEPROUTER_WORKER_SOCKET", WORKER_SOCKETS, d.worker_socket),
    )


def _text(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name) or None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value < math.inf):  # also refuses NaN
        raise ConfigError(f"{name}: must be a positive number of seconds, not {raw!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name}: must be a positive whole number, not {raw!r}")
    return int(raw)


def _choice(env: Mapping[str, str], name: str, allowed: tuple[_T, ...], default: _T) -> _T:
    raw = env.get(name)
    if not raw:
        return default
    if raw not in allowed:
        raise ConfigError(f"{name}: must be one of {', '.join(allowed)}, not {raw!r}")
    return raw


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if not raw:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name}: must be 1 or 0 (true/false, yes/no, on/off), not {raw!r}")
