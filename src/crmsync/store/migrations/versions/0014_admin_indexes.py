"""Indexes for the admin pages over large databases: open sync errors newest first, unread
notifications by severity, and persons by the lower-cased start of first name, last name and
company (the people search).

Revision ID: 0014_admin_indexes
Revises: 0013_person_company_fields
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

_LOWERED = (
    ("ix_persons_first_name_lower", "first_name"),
    ("ix_persons_last_name_lower", "last_name"),
    ("ix_persons_company_lower", "company"),
)

revision: str = "0014_admin_indexes"
down_revision: str | None = "0013_person_company_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_sync_errors_open_recent",
        "sync_errors",
        ["last_seen", "id"],
        unique=False,
        postgresql_where=sa.text("resolved_at IS NULL"),
        sqlite_where=sa.text("resolved_at IS NULL"),
    )
    op.create_index(
        "ix_notifications_unread", "notifications", ["read_at", "severity"], unique=False
    )
    for name, column in _LOWERED:
        op.create_index(name, "persons", [sa.text(f"lower({column})")], unique=False)


def downgrade() -> None:
    for name, _ in _LOWERED:
        op.drop_index(name, table_name="persons")
    op.drop_index("ix_notifications_unread", table_name="notifications")
    op.drop_index("ix_sync_errors_open_recent", table_name="sync_errors")
