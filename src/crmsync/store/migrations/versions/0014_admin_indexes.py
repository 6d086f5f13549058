"""Indexes for the admin pages over large databases: open sync errors newest first, and
unread notifications by severity.

Revision ID: 0014_admin_indexes
Revises: 0008_microsoft_campaigns
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_admin_indexes"
down_revision: str | None = "0008_microsoft_campaigns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_sync_errors_open_recent",
        "sync_errors",
        ["resolved_at", "last_seen", "id"],
        unique=False,
    )
    op.create_index(
        "ix_notifications_unread", "notifications", ["read_at", "severity"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_unread", table_name="notifications")
    op.drop_index("ix_sync_errors_open_recent", table_name="sync_errors")
