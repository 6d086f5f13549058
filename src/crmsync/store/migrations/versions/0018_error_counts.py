"""Counts of open sync errors per entity, direction and Dynamics code (``sync_error_counts``),
kept by the code that opens and closes errors, so that the errors page, the overview and the
failure digest no longer count every open error. Filled here from the errors already open.

Revision ID: 0018_error_counts
Revises: 0017_smartlist_filter_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_error_counts"
down_revision: str | None = "0017_smartlist_filter_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_error_counts",
        sa.Column("entity", sa.String(length=128), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=False),
        sa.Column("open_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "entity", "direction", "error_code", name=op.f("pk_sync_error_counts")
        ),
    )
    op.execute(
        "INSERT INTO sync_error_counts (entity, direction, error_code, open_count) "
        "SELECT entity, direction, COALESCE(error_code, ''), COUNT(*) FROM sync_errors "
        "WHERE resolved_at IS NULL GROUP BY entity, direction, COALESCE(error_code, '')"
    )


def downgrade() -> None:
    op.drop_table("sync_error_counts")
