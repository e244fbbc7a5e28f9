"""Issue 20, item 4: memory that can be collected. The embedded scheduler freezes the long-lived
heap once, after the first run; what later runs leave behind stays collectable (freezing after
every run moved each run's leftovers, reference cycles included, out of the collector's reach)."""

from __future__ import annotations

import gc
import weakref

from insider_selling.app import HeapSettler


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_the_heap_is_frozen_once_and_200_runs_of_leftovers_stay_collectable() -> None:
    settle = HeapSettler()
    try:
        settle()  # the first run: the backfilled heap is frozen
        frozen = gc.get_freeze_count()
        leftovers = []
        for _ in range(200):  # 200 runs, each leaving a cycle behind
            node = _Node()
            leftovers.append(weakref.ref(node))
            del node
            settle()
        assert gc.get_freeze_count() == frozen  # the permanent generation did not grow
        gc.collect()
        assert all(ref() is None for ref in leftovers)  # every run's cycle was collected
    finally:
        gc.unfreeze()
