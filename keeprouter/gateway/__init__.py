"""The request path: resolve -> select -> admit -> attempts -> meter -> settle (see gateway.py)."""

from keeprouter.gateway.gateway import SETTLE_WAIT, Caller, Completion, Gateway, Metering, Route
from keeprouter.gateway.live_stream import LiveStream

__all__ = ["SETTLE_WAIT", "Caller", "Completion", "Gateway", "LiveStream", "Metering", "Route"]
