"""Garbage collection paced by pages during long reads (B16): nothing cyclic is kept and
the collector always comes back on."""

from __future__ import annotations

import gc
import weakref

import pytest

from crmsync.sync.collection import FULL_EVERY_PAGES, PageCollector


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_the_collector_is_off_during_the_read_and_back_on_after() -> None:
    assert gc.isenabled()
    with PageCollector():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_on_when_the_read_fails() -> None:
    with pytest.raises(RuntimeError), PageCollector():
        raise RuntimeError("Dynamics went away")
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    try:
        with PageCollector():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cyclic_garbage_of_a_page_is_reclaimed_after_it() -> None:
    with PageCollector() as collector:
        ref = _cycle()
        assert ref() is not None  # unreachable, but only a collection frees a cycle
        collector.page_done()
        assert ref() is None


def test_old_cyclic_garbage_is_reclaimed_by_the_periodic_full_collection() -> None:
    with PageCollector() as collector:
        node = _Node()
        node.other = _Node()
        node.other.other = node
        ref = weakref.ref(node)
        gc.collect(1)  # while still reachable: promoted to the oldest generation
        del node
        for _ in range(FULL_EVERY_PAGES - 1):
            collector.page_done()
        assert ref() is not None
        collector.page_done()
        assert ref() is None
