"""Serve an app until SIGTERM/SIGINT, then shut down gracefully.

First signal: stop accepting (the listening socket closes, so new connections are refused), close
idle keep-alive connections, and let the requests in flight (streams included) finish, for at most
`grace` seconds (KEEPROUTER_SHUTDOWN_SECONDS, default 30). A second signal, or the deadline, ends
that wait at once: the remaining connections are closed, which cancels their handlers; a cancelled
stream is settled for what it produced, a cancelled wait for an upstream releases its hold. Then
the app's cleanup runs: every settle is awaited (`Gateway.drain`), the health and stats batches
are flushed, the store is closed. The process then exits 0: no settled charge is lost either way.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket

from aiohttp import web

log = logging.getLogger("keeprouter")
DEFAULT_GRACE = 30.0
_POLL = 0.05  # seconds between two looks at the connections still open while draining


class Draining:
    """Set once shutdown begins, so the readiness probe answers 503 from then on."""

    def __init__(self) -> None:
        self.on = False


DRAINING: web.AppKey[Draining] = web.AppKey("keeprouter_draining", Draining)


async def serve(
    app: web.Application,
    host: str,
    port: int,
    grace: float = DEFAULT_GRACE,
    sock: socket.socket | None = None,
    **site: object,
) -> None:
    """Run `app` on host:port (or on `sock`, a listening socket a supervisor handed down) until
    signalled, then shut down as the module docstring says. `site` goes to aiohttp's TCPSite
    (`reuse_port=True` for workers that each bind the port)."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True,
                           shutdown_timeout=1.0)  # fmt: skip
    await runner.setup()
    settle_heap()
    loop = asyncio.get_running_loop()
    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            hurry.set()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        tcp: web.BaseSite
        if sock is not None:
            tcp = web.SockSite(runner, sock, backlog=4096)
        else:
            tcp = web.TCPSite(runner, host, port, backlog=4096, **site)  # type: ignore[arg-type]
        await tcp.start()
        log.info("listening on http://%s:%d", host, port)
        await stop.wait()
        if DRAINING in app:
            app[DRAINING].on = True
        await _drain_connections(runner, tcp, grace, hurry)
    finally:
        await runner.cleanup()  # the app's cleanup: settles drained, batches flushed, store closed
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("shut down cleanly")


# With requests in flight together, the objects they hold (dicts, coroutines, futures, buffers) pass
# the default young-generation threshold (700) often: measured at 32 concurrent small requests, ~80
# young, ~7 middle and ~0.7 full collections per 1000 requests, each full one walking the ~90k
# long-lived objects (tens of ms). Nearly all request garbage is freed by reference counting, so at
# 10_000 the young collections are rare, and what cyclic garbage waits longer is bounded by a few
# requests' worth. The older generations keep their defaults: they count young collections, which
# are rare already.
GC_YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once the app is built and started, before serving: the config, catalogue, modules and
    connection pools live as long as the process, so they are collected once and frozen
    (`gc.freeze`: no later collection walks them again), and young collections run less often
    (GC_YOUNG_THRESHOLD). Only in the serving process: apps built in-process (tests) keep Python's defaults."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def _drain_connections(runner: web.AppRunner, tcp: web.BaseSite, grace: float, hurry: asyncio.Event) -> None:
    server = runner.server
    assert server is not None
    await tcp.stop()  # no new connections from here on
    server.pre_shutdown()  # idle keep-alive connections close now, busy ones after their response
    busy = len(server.connections)
    log.info("shutting down: %d connections in flight, waiting up to %.0fs (signal again to stop now)", busy, grace)
    deadline = asyncio.get_running_loop().time() + grace
    hurried = asyncio.ensure_future(hurry.wait())
    try:
        while server.connections and not hurry.is_set():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await asyncio.wait((hurried,), timeout=min(_POLL, left))
    finally:
        hurried.cancel()
    if server.connections:
        log.warning("shutdown: closing %d connections still in flight", len(server.connections))
        for conn in server.connections:
            conn.force_close()  # connection_lost cancels the handler (handler_cancellation)
        await asyncio.sleep(0)
