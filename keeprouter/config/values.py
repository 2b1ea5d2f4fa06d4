"""Checks of single config values: each returns the typed value or raises ConfigError naming `where`."""

from __future__ import annotations

import datetime as dt
import hmac
from decimal import Decimal, InvalidOperation
from typing import Any


class ConfigError(Exception):
    """One line, naming the key at fault."""


def str_opt(v: Any, where: str) -> str | None:
    if v is not None and not isinstance(v, str):
        raise ConfigError(f"{where}: must be a string")
    return v or None


def date_opt(v: Any, where: str) -> dt.date | None:
    if v is None or (isinstance(v, dt.date) and not isinstance(v, dt.datetime)):
        return v
    try:
        return dt.date.fromisoformat(str(v))
    except ValueError:
        raise ConfigError(f"{where}: must be a date, YYYY-MM-DD") from None


def money(v: Any, where: str) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ConfigError(f"{where}: must be a number (USD per 1M tokens)")
    try:
        d = Decimal(str(v))  # str() so 0.2 stays exactly 0.2, not the binary float
    except InvalidOperation:
        raise ConfigError(f"{where}: must be a number (USD per 1M tokens)") from None
    if d < 0 or not d.is_finite():
        raise ConfigError(f"{where}: must be >= 0")
    return d


def money_opt(v: Any, where: str) -> Decimal | None:
    return None if v is None else money(v, where)


def int_opt(v: Any, where: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"{where}: must be a non-negative integer")
    return v


def positive(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise ConfigError(f"{where}: must be a positive number of seconds")
    return float(v)


def mapping(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ConfigError(f"{where}: must be a mapping")
    return v


MIN_METRICS_TOKEN = 16  # characters: a guessable scrape token would publish the operator's figures


def metrics_token(value: object, admin: object) -> str | None:
    """`metrics_token`: a scrape-only secret for GET /metrics (absent or empty: none). The error
    messages never quote it."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError("metrics_token: must be a string")
    token = value.strip()
    if len(token) < MIN_METRICS_TOKEN or not (token.isascii() and token.isprintable()) or " " in token:
        raise ConfigError(f"metrics_token: must be at least {MIN_METRICS_TOKEN} printable ASCII characters, no spaces")
    if isinstance(admin, str) and hmac.compare_digest(token.encode(), admin.strip().encode()):
        raise ConfigError("metrics_token: must differ from admin_key (it opens /metrics only)")
    return token
