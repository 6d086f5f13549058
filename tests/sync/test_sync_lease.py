"""The database-wide cycle lease: one holder at a time, across engines (processes), and a
crashed holder's lease expires (issue 5 "Running it")."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from crmsync.errors import LeaseHeldError
from crmsync.store.db import open_database
from crmsync.sync.lease import SyncLease
from crmsync.sync.status import read_status


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


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_dead_holder_on_this_host_frees_the_lease_at_once(migrated_engine: Engine) -> None:
    """Its process is gone: nobody waits for the expiry (Ctrl-C gone wrong, SIGKILL, OOM)."""
    dead = SyncLease(
        migrated_engine, seconds=3600, holder=f"{socket.gethostname()}:{_dead_pid()}:cafe"
    )
    assert dead.try_acquire()
    successor = SyncLease(migrated_engine, seconds=30)
    assert successor.current_holder() is None
    assert successor.try_acquire()
    holder = successor.current_holder()
    assert holder is not None and holder.pid == os.getpid()
    with pytest.raises(LeaseHeldError):
        dead.renew()


def test_a_live_or_remote_holder_keeps_the_lease_until_it_expires(
    migrated_engine: Engine,
) -> None:
    clock = Clock()
    live = SyncLease(
        migrated_engine, seconds=30, holder=f"{socket.gethostname()}:{os.getppid()}:beef"
    )
    remote = SyncLease(
        migrated_engine, seconds=30, holder=f"elsewhere.example:{_dead_pid()}:f00d", clock=clock
    )
    other = SyncLease(migrated_engine, seconds=30, clock=clock)
    assert live.try_acquire()
    assert not other.try_acquire()  # the parent process is alive
    live.release()
    assert remote.try_acquire()
    assert not other.try_acquire()  # a pid on another host says nothing here
    clock.now += timedelta(seconds=31)
    assert other.try_acquire()


def test_the_heartbeat_keeps_a_short_lease_while_the_holder_works(
    migrated_engine: Engine,
) -> None:
    holder = SyncLease(migrated_engine, seconds=1.5)
    other = SyncLease(migrated_engine, seconds=1.5)
    with holder.held():
        for _ in range(8):  # 4 s: well past the lease's length without renewal
            time.sleep(0.5)
            assert not other.try_acquire()
    assert other.try_acquire()


def test_release_on_a_busy_database_gives_up_quickly_and_quietly(
    sqlite_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_database(sqlite_database_url)
    blocker = sqlite3.connect(sqlite_database_url.removeprefix("sqlite:///"), timeout=0)
    try:
        lease = SyncLease(engine, seconds=30)
        assert lease.try_acquire()
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
        started = time.monotonic()
        assert lease.release() is False
        assert time.monotonic() - started < 10
        assert "could not release the sync lease now" in caplog.text
        assert not [r for r in caplog.records if r.exc_info]
        blocker.rollback()
        assert lease.release() is True
        assert lease.current_holder() is None
    finally:
        blocker.close()
        engine.dispose()


def test_status_names_the_process_holding_the_lease(migrated_engine: Engine) -> None:
    assert read_status(migrated_engine).lease_holder is None
    with SyncLease(migrated_engine, seconds=30).held():
        status = read_status(migrated_engine)
        assert status.lease_host == socket.gethostname()
        assert status.lease_pid == os.getpid()
        assert status.as_dict()["lease_expires_at"] is not None
    assert read_status(migrated_engine).lease_holder is None
