"""The request path: resolve -> select -> admit -> attempts -> meter -> settle.

gateway.py      the Gateway: route, admission, THE attempt loop (both answer modes)
response_cache.py  the opt-in response cache: a kept answer replayed, a missed one kept
attempts.py     what an attempt is in each mode (whole answer, first stream event); its failures
live_stream.py  a stream in flight, metered as it goes and settled when it ends
settle.py       recording a generation and settling its hold, now or later; drained at shutdown
retrieval.py    embeddings and rerank as a mode of the attempt loop (no output; sized by their inputs)
metering.py     Caller, the typed Attempt record, Metering, the one usage-filling rule
counting.py     token counts besides the upstream's usage (count_tokens, usage-less upstreams)
spans.py        the upstream attempt's span, when tracing is on
cache_backends.py  where the response cache keeps answers: Redis, or the database

Each module imports only modules listed below it (tests/test_import_cycles.py keeps the package
free of circles); none takes names from this __init__.
"""

from keeprouter.gateway.attempts import MAX_ATTEMPTS, MAX_RETRY_SECONDS
from keeprouter.gateway.gateway import Gateway, Route
from keeprouter.gateway.live_stream import LiveStream, StreamOwner
from keeprouter.gateway.metering import Attempt, Caller, Completion, Metering
from keeprouter.gateway.retrieval import Retrieved
from keeprouter.gateway.settle import SETTLE_WAIT, Settler, settled_within

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_RETRY_SECONDS",
    "SETTLE_WAIT",
    "Attempt",
    "Caller",
    "Completion",
    "Gateway",
    "LiveStream",
    "Metering",
    "Retrieved",
    "Route",
    "Settler",
    "StreamOwner",
    "settled_within",
]
