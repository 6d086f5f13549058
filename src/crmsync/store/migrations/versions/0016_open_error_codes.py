"""An index for the sync errors page's groups: open errors by error code, newest last seen
first, so that the counts per code and each code's latest message are read from the index
instead of the whole table.

Revision ID: 0016_open_error_codes
Revises: 0014_admin_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_open_error_codes"
down_revision: str | None = "0015_custom_parent_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_sync_errors_open_code",
        "sync_errors",
        ["error_code", "last_seen"],
        unique=False,
        postgresql_where=sa.text("resolved_at IS NULL"),
        sqlite_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_sync_errors_open_code", table_name="sync_errors")
