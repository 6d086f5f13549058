"""Shared set-up of the campaign benchmarks: a synced org with the sync enabled
(:func:`bench.support.synced_org`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.support import Setup, synced_org


@contextmanager
def campaign_setup(seed_leads: int = 20, batch_size: int = 500) -> Iterator[Setup]:
    """Everything started and synced once, the sync enabled; all stopped on exit."""
    with synced_org(seed_leads, batch_size=batch_size, enable_sync=True) as setup:
        yield setup
