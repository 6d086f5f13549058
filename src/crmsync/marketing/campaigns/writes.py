"""The two writes campaigns make outside their own tables, each in one place: activity rows
(through the activity log's insert) and outbox entries for persons a flow deleted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from crmsync.marketing.activities import insert_activities
from crmsync.store.tables import sync_outbox


def write_activities(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append activity rows (person_id, type_id, activity_date, primary_value_id,
    primary_value, field_name, attributes, campaign_id) in the caller's transaction."""
    insert_activities(conn, rows)


def queue_deleted_person(conn: Connection, person_id: int, source: str) -> None:
    """Tell the sync a person is gone (its links are dropped, nothing is sent to Dynamics)."""
    conn.execute(
        insert(sync_outbox).values(
            person_id=person_id,
            operation="delete",
            changed_fields=[],
            created_at=datetime.now(UTC),
            source=source,
        )
    )
