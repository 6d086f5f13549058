"""An admin's retry of failing records (B38): queue them for the next cycle.

(Transient Dynamics failures are retried by the client itself: :mod:`crmsync.dynamics.retry`.)

A record that failed on its way to Dynamics gets an outbox update (the next push sends its
current values); one that failed on its way in is read again from Dynamics. Errors stay listed
until the record syncs. The CLI (``crmsync sync retry``), the admin UI and the admin API call
this one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from crmsync.store import outbox
from crmsync.sync.failures import open_errors
from crmsync.sync.rereads import request_rereads


def retry_errors(conn: Connection, error_ids: Sequence[int] | None = None) -> int:
    """Queue the open errors with ``error_ids`` (all open errors when None) for the next
    cycle, in the caller's transaction; returns how many were queued."""
    rows: list[dict[str, Any]]
    if error_ids is None:
        rows = open_errors(conn)
    else:
        rows = [
            row
            for error_id in dict.fromkeys(error_ids)
            for row in open_errors(conn, error_id=error_id)
        ]
    to_crm = [r["local_id"] for r in rows if r["direction"] == "to_crm" and r["local_id"]]
    outbox.enqueue(conn, to_crm, operation="update", source="Admin retry")
    request_rereads(
        conn, [(r["entity"], r["crm_id"]) for r in rows if r["direction"] == "to_marketing"]
    )
    return len(rows)
