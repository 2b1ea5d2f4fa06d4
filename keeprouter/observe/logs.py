"""Log lines: plain text (default) or one JSON object per line (`--log-format json`, or
KEEPROUTER_LOG_FORMAT=json: keeprouter.settings), each carrying the generation id of the request it
belongs to.

The id lives in a context variable set when the gateway begins a generation, so every line logged
while that request is handled (and by the settle tasks it starts, which copy the context) carries
it, with no logger passed around. Log messages never contain a key or a prompt: the code logs ids,
counts and error kinds only, and this formatter adds nothing but the fields below.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

GENERATION_ID: ContextVar[str | None] = ContextVar("keeprouter_generation_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        gen_id = GENERATION_ID.get()
        if gen_id is not None:
            out["generation_id"] = gen_id
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        gen_id = GENERATION_ID.get()
        return f"{line} [{gen_id}]" if gen_id else line


def configure(fmt: str, level: int = logging.INFO) -> None:
    """Route every log record to stderr in `fmt` (the CLI calls this once, at start-up)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
