"""`serving.settle_heap`: the served process's collector settings (the process-level tests in
test_shutdown.py run it for real)."""

from __future__ import annotations

import gc

from keeprouter.serving import GC_YOUNG_THRESHOLD, settle_heap


def test_settle_heap_freezes_what_exists_and_raises_only_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    finally:  # this test process keeps Python's defaults
        gc.unfreeze()
        gc.set_threshold(*before)
