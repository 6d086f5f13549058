"""What ``crmsync sync status`` prints, kept free of the command-line framework so that the
console script (:mod:`crmsync.console`) answers that command without loading it: the quickest
command stays quick. ``crmsync sync status --help`` and other forms go through the full
command line, whose ``status`` command calls the same :func:`show_status`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from crmsync.store.db import open_database
from crmsync.sync.status import read_status

if TYPE_CHECKING:
    from crmsync.settings import Settings
    from crmsync.sync.status import SyncStatus

_OUT = Console()


def _lease_line(snapshot: SyncStatus) -> str:
    """Who runs a cycle now: the lease holder's host and process id, or nobody."""
    if snapshot.lease_holder is None:
        return "sync lease: free (no cycle running)"
    who = (
        f"{snapshot.lease_host} pid {snapshot.lease_pid}"
        if snapshot.lease_host and snapshot.lease_pid
        else snapshot.lease_holder
    )
    acquired, expires = snapshot.lease_acquired_at, snapshot.lease_expires_at
    since = f" since {acquired:%H:%M:%S} UTC" if acquired else ""
    until = f", until {expires:%H:%M:%S} UTC unless renewed" if expires else ""
    return f"sync lease: held by {who}{since}{until}"


def _megabytes(count: int) -> str:
    """A byte count in megabytes, one decimal."""
    return f"{count / 1_000_000:.1f} MB"


def show_status(settings: Callable[[], Settings], *, as_json: bool) -> None:
    """Print what ``crmsync sync status`` shows, for the settings ``settings()`` returns;
    raises :class:`~crmsync.errors.CrmsyncError` (the caller says it and exits 1)."""
    engine = open_database(settings().database.url)
    try:
        snapshot = read_status(engine)
    finally:
        engine.dispose()
    if as_json:
        _OUT.print_json(json.dumps(snapshot.as_dict()))
        return
    _OUT.print(f"sync is {'enabled' if snapshot.enabled else 'disabled'}", highlight=False)
    if snapshot.sync_user:
        _OUT.print(f"sync user: {snapshot.sync_user}", highlight=False, soft_wrap=True)
    _OUT.print(_lease_line(snapshot), highlight=False, soft_wrap=True)
    done = [e for e, ok in snapshot.initial_sync_done.items() if ok]
    _OUT.print(f"initial sync done for: {', '.join(sorted(done)) or 'none yet'}", highlight=False)
    if snapshot.last_cycle_started is not None:
        _OUT.print(
            f"last cycle: {snapshot.last_cycle_started:%Y-%m-%d %H:%M:%S} UTC, "
            f"{snapshot.last_cycle_outcome}, {snapshot.last_cycle_duration_seconds or 0:.2f} s, "
            f"{snapshot.last_cycle_api_calls} requests",
            highlight=False,
        )
    else:
        _OUT.print("no cycle has run yet")
    _OUT.print(
        f"last hour: {snapshot.cycles_last_hour} cycles, {snapshot.records_synced_last_hour} "
        f"records synced, {snapshot.api_calls_last_hour} Dynamics requests; "
        f"{snapshot.open_errors} failing records",
        highlight=False,
    )
    traffic = snapshot.traffic_last_hour
    kinds = ", ".join(f"{kind} {count}" for kind, count in traffic.requests_by_kind.items())
    _OUT.print(
        f"Dynamics traffic last hour: {kinds or 'no requests'}; "
        f"{traffic.throttled} throttled (429), {traffic.retries} retries, "
        f"{traffic.transport_errors} transport errors; "
        f"{_megabytes(traffic.bytes_sent)} sent, {_megabytes(traffic.bytes_received)} received",
        highlight=False,
    )
    for wait in snapshot.writes_waiting:
        _OUT.print(
            f"writes to {wait.entity} wait since {wait.since:%Y-%m-%d %H:%M:%S} UTC: "
            f"{wait.summary}; their changes stay queued. Fix: {wait.fix}",
            highlight=False,
            soft_wrap=True,
        )
    table = Table(title="backlog (marketing → Dynamics)")
    for column in ("entity", "creates", "updates", "deletes", "oldest pending"):
        table.add_column(column)
    for b in snapshot.backlog:
        table.add_row(
            b.entity,
            str(b.pending_creates),
            str(b.pending_updates),
            str(b.pending_deletes),
            f"{b.oldest_pending:%Y-%m-%d %H:%M:%S}" if b.oldest_pending else "",
        )
    _OUT.print(table)
