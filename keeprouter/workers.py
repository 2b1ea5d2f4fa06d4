"""`keeprouter serve --workers N`: a supervisor process running N identical workers on one port.

Each worker is `python -m keeprouter ...` with the supervisor's own arguments and KEEPROUTER_WORKER
set; it serves through `serving.serve` as a single process does. How the workers share the port
(KEEPROUTER_WORKER_SOCKET):
- `shared` (default): the supervisor binds the socket once and hands it to every worker; the
  kernel wakes whichever worker is idle in accept(), so a busy worker takes fewer connections.
- `reuseport`: every worker binds its own socket with SO_REUSEPORT; the kernel hashes each new
  connection to one of them, busy or not.
Measured with bench/scale.py (docs/scaling.md; 2 loaded cores, 10 s at 32
connections in flight), CPU seconds per worker: shared 1.8+1.7 and 1.4+1.5 in two runs,
reuseport 1.9+1.9 and 2.4+0.2 (the kernel hashes a connection to a worker busy or not, or before
the second has bound). The shared socket spread evenly every time, so it is the default.

Signals: SIGTERM/SIGINT to the supervisor closes its copy of the socket and is forwarded to every
worker, which drains gracefully (serving.py); a second signal is forwarded too (stop now). The
supervisor exits once every worker has, 0 if they all exited 0. A worker that dies while serving
is restarted (at most once a second, so a worker that cannot start does not spin).

Metrics: the supervisor creates PROMETHEUS_MULTIPROC_DIR (unless given) so one scrape of
`/metrics` on any worker covers every worker; a dead worker's live gauges are dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger("keeprouter")
WORKER_ENV = "KEEPROUTER_WORKER"  # set in a worker: its index (1..N)
FD_ENV = "KEEPROUTER_WORKER_FD"  # the shared listening socket's descriptor, in `shared` mode
RESTART_EVERY = 1.0  # seconds: the fastest one worker slot is restarted
_POLL = 0.1


class SqliteBusy(Exception):
    """Another KeepRouter process serves this SQLite file."""


def sqlite_lock(database: str) -> IO[bytes] | None:
    """Hold an exclusive lock beside an SQLite database for this process's life (None for other
    databases). SQLite's credit holds are exact only inside one process, so a second server on
    the same file must not start: its reservations would not see the first one's."""
    if not database.startswith("sqlite:///") or database == "sqlite:///:memory:":
        return None
    path = Path(database.removeprefix("sqlite:///")).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path.with_name(path.name + ".lock"), "ab")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise SqliteBusy(
            f"another keeprouter server is using {path}; SQLite serves one process only: "
            "use PostgreSQL (database: postgresql://...) for --workers > 1 or several instances"
        ) from None
    return f


def inherited_socket() -> socket.socket | None:
    """In a `shared`-mode worker: the supervisor's listening socket."""
    fd = os.environ.get(FD_ENV)
    return socket.socket(fileno=int(fd)) if fd else None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, argv: Sequence[str], workers: int, host: str, port: int, mode: str = "shared") -> None:
        self.argv = list(argv)
        self.n = workers
        self.host, self.port = host, port
        self.mode = mode  # "shared" or "reuseport" (KEEPROUTER_WORKER_SOCKET, validated by keeprouter.settings)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}  # slot -> process
        self.started: dict[int, float] = {}
        self.signals = 0
        self.sock: socket.socket | None = None
        self.metrics_dir = ""
        self._own_dir = False

    def run(self) -> int:
        self._metrics_dir()
        if self.mode == "shared":
            self.sock = _bind(self.host, self.port)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("supervisor %d: %d workers on http://%s:%d (%s socket)",
                 os.getpid(), self.n, self.host, self.port, self.mode)  # fmt: skip
        for slot in range(1, self.n + 1):
            self._spawn(slot)
        forwarded = 0
        codes: dict[int, int] = {}
        try:
            while True:
                if self.signals > forwarded:
                    forwarded = self.signals
                    self._forward()
                for slot, p in list(self.procs.items()):
                    code = p.poll()
                    if code is None:
                        continue
                    self._dead(p.pid)
                    del self.procs[slot]
                    if self.signals:
                        codes[slot] = code
                    else:
                        log.warning("worker %d (pid %d) exited with %s; restarting it", slot, p.pid, code)
                        self._restart(slot)
                if self.signals and not self.procs:
                    break
                time.sleep(_POLL)
        finally:
            for p in self.procs.values():  # only on an error of ours: do not leave orphans
                p.kill()
            if self._own_dir:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)
        # -SIGTERM: a worker still starting when the signal came (no handler yet, nothing in flight)
        bad = {s: c for s, c in codes.items() if c not in (0, -signal.SIGTERM)}
        if bad:
            log.error("workers exited with errors: %s", bad)
        log.info("supervisor: every worker has exited")
        return 1 if bad else 0

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals += 1

    def _forward(self) -> None:
        if self.sock is not None:  # the kernel stops queueing connections once the workers close theirs
            self.sock.close()
            self.sock = None
        for p in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)

    def _metrics_dir(self) -> None:
        given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if given:
            Path(given).mkdir(parents=True, exist_ok=True)
            for f in Path(given).glob("*.db"):  # values of a previous run must not be added to ours
                f.unlink()
            self.metrics_dir = given
        else:
            self.metrics_dir = tempfile.mkdtemp(prefix="keeprouter-metrics-")
            self._own_dir = True

    def _spawn(self, slot: int) -> None:
        env = {**os.environ, WORKER_ENV: str(slot), "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        fds: tuple[int, ...] = ()
        if self.sock is not None:
            env[FD_ENV] = str(self.sock.fileno())
            fds = (self.sock.fileno(),)
        p = subprocess.Popen([sys.executable, "-m", "keeprouter", *self.argv], env=env, pass_fds=fds,
                             preexec_fn=_die_with_parent)  # fmt: skip
        self.procs[slot] = p
        self.started[slot] = time.monotonic()

    def _restart(self, slot: int) -> None:
        wait = self.started[slot] + RESTART_EVERY - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if not self.signals:
            self._spawn(slot)

    def _dead(self, pid: int) -> None:
        try:
            from prometheus_client import multiprocess
        except ImportError:  # pragma: no cover - a dependency, but never fatal to the supervisor
            return
        multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the supervisor dies (even by SIGKILL), so no
    worker outlives it holding the port (Linux prctl PR_SET_PDEATHSIG; elsewhere a no-op)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def supervise(argv: Sequence[str], workers: int, host: str, port: int, mode: str = "shared") -> int:
    return Supervisor(argv, workers, host, port, mode).run()
