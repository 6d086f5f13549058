"""The database-wide cycle lease: one holder at a time, across engines (processes), and a
crashed holder's lease expires (issue 5 "Running it")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from crmsync.errors import LeaseHeldError
from crmsync.store.db import open_database
from crmsync.sync.lease import SyncLease


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_only_one_holder_until_release(migrated_engine: Engine, database_url: str) -> None:
    """A second holder (another engine, as another process would have) is refused while the
    first holds the lease, and gets it once released."""
    other_engine = open_database(database_url)
    try:
        first = SyncLease(migrated_engine, seconds=60, holder="a")
        second = SyncLease(other_engine, seconds=60, holder="b")
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.try_acquire()  # renewing one's own lease is fine
        with pytest.raises(LeaseHeldError, match="another sync cycle is running"), second.held():
            pass
        first.release()
        with second.held():
            assert not first.try_acquire()
        assert first.try_acquire()
    finally:
        other_engine.dispose()


def test_a_crashed_holders_lease_expires(migrated_engine: Engine) -> None:
    """A holder that stops renewing (killed) loses the lease after its expiry; renewing a lost
    lease raises, so the old holder cannot keep writing as if it held it."""
    clock = Clock()
    crashed = SyncLease(migrated_engine, seconds=30, holder="crashed", clock=clock)
    successor = SyncLease(migrated_engine, seconds=30, holder="next", clock=clock)
    assert crashed.try_acquire()
    clock.now += timedelta(seconds=29)
    assert not successor.try_acquire()
    assert successor.current_holder() is not None
    clock.now += timedelta(seconds=2)
    assert successor.current_holder() is None
    assert successor.try_acquire()
    with pytest.raises(LeaseHeldError):
        crashed.renew()
    successor.renew()
