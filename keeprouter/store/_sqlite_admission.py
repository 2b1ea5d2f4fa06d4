"""What SQLite's `reserve` caches of one account's row (a key, a user or a team): see store/sqlite.py."""

from __future__ import annotations

import math

from keeprouter.store.base import SECONDS_PER_DAY

ADMISSION_TTL = 2.0  # seconds an admission state is trusted before the row is read again


class Admission:
    """What `reserve` needs of one key's row, as of database sequence number `seq`.

    `limit_usage` may be newer (a settle's figure, as of `usage_seq`). A marker (`loaded_at` = inf:
    never fresh) stands for "this process changed the key at `seq`: read it again"."""

    __slots__ = (
        "day", "expires_at", "limit", "limit_usage", "live", "loaded_at", "owners", "parallel", "seq", "usage_seq",
    )  # fmt: skip

    def __init__(
        self, seq: int, loaded_at: float, day: int, live: bool, expires_at: float | None,
        limit: int | None, limit_usage: int, owners: tuple[str, ...] = (), parallel: int | None = None,
    ) -> None:  # fmt: skip
        self.owners = owners  # a key's user and team accounts ("u:<id>", "t:<id>"), reserved on with it
        self.parallel = parallel  # a key's max_parallel_requests: its open holds are its requests in flight
        self.seq = self.usage_seq = seq
        self.loaded_at = loaded_at
        self.day = day  # the UTC day it was read on: every limit period starts on a UTC day
        self.live = live  # exists, not deleted, not disabled
        self.expires_at = expires_at
        self.limit = limit  # nano-dollars; None = unlimited
        self.limit_usage = limit_usage  # nano-dollars counting against `limit` in the current period

    @classmethod
    def marker(cls, seq: int) -> Admission:
        return cls(seq, math.inf, -1, False, None, None, 0)

    def fresh(self, now: float) -> bool:
        return self.loaded_at <= now < self.loaded_at + ADMISSION_TTL and int(now // SECONDS_PER_DAY) == self.day
