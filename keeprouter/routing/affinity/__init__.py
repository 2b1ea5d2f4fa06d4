"""Conversation affinity: the turns of one conversation go to the endpoint that served its last
turn while it is healthy and allowed, so the provider's prompt cache stays warm.

- `key`: naming a conversation (pure), and how long its affinity lasts.
- `table`: the table protocol and its in-process implementation; `redis_table`: the shared one.
- `order`: the selection rule (pure).
- `sticky`: the three calls the gateway makes (name the conversation, order, remember).
"""

from keeprouter.routing.affinity.key import (
    LONG_TTL,
    MIN_CACHEABLE_TOKENS,
    SESSION_HEADER,
    SHORT_TTL,
    Conversation,
    affinity_ttl,
    conversation,
)
from keeprouter.routing.affinity.order import prefer
from keeprouter.routing.affinity.sticky import Sticky
from keeprouter.routing.affinity.table import DEFAULT_MAX_ENTRIES, AffinityTable, MemoryAffinity

__all__ = [
    "DEFAULT_MAX_ENTRIES", "LONG_TTL", "MIN_CACHEABLE_TOKENS", "SESSION_HEADER", "SHORT_TTL", "AffinityTable",
    "Conversation", "MemoryAffinity", "Sticky", "affinity_ttl", "conversation", "prefer",
]  # fmt: skip
