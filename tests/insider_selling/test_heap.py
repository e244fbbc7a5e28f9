"""Issue 20, item 4: memory that can be collected. The embedded scheduler freezes the long-lived
heap once, after the first run; what later runs leave behind stays collectable (freezing after
every run moved each run's leftovers, reference cycles included, out of the collector's reach)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

import insider_selling.app
from insider_selling.app import HeapSettler


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


class _CountingGC:
    """The ``gc`` the settler sees: counts its freezes (the suite runs other apps in threads, whose
    own first runs freeze the process's heap too, so the global freeze count is not this test's)."""

    def __init__(self) -> None:
        self.freezes = 0

    def collect(self, *args: Any) -> int:
        return gc.collect(*args)

    def freeze(self) -> None:
        self.freezes += 1


def test_the_heap_is_frozen_once_and_200_runs_of_leftovers_stay_collectable(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _CountingGC()
    monkeypatch.setattr(insider_selling.app, "gc", counting)
    settle = HeapSettler()
    settle()  # the first run: the backfilled heap is frozen
    assert counting.freezes == 1
    leftovers = []
    for _ in range(200):  # 200 runs, each leaving a cycle behind
        node = _Node()
        leftovers.append(weakref.ref(node))
        del node
        settle()
    assert counting.freezes == 1  # never again: nothing a later run leaves is moved out of reach
    gc.collect()
    assert all(ref() is None for ref in leftovers)  # every run's cycle was collected
