"""Quick sync jobs: newly selected Dynamics columns are filled by a job of their own, beside
the regular sync, resumable page by page, with progress (B12); and each selected column's
Dynamics type, so that a column whose type changed in Dynamics is flagged.

Revision ID: 0011_quick_sync_jobs
Revises: 0010_custom_entities
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_quick_sync_jobs"
down_revision: str | None = "0010_custom_entities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "quick_sync_jobs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("entity", sa.String(128), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("modified_since", _UTC, nullable=True),
        sa.Column("modified_until", _UTC, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("records_done", sa.Integer(), nullable=False),
        sa.Column("records_filled", sa.Integer(), nullable=False),
        sa.Column("records_total", sa.Integer(), nullable=True),
        sa.Column("position", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("started_at", _UTC, nullable=True),
        sa.Column("finished_at", _UTC, nullable=True),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quick_sync_jobs"),
    )
    op.create_index("ix_quick_sync_jobs_state", "quick_sync_jobs", ["state"])
    op.add_column("field_selection", sa.Column("attribute_type", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("field_selection") as batch:
        batch.drop_column("attribute_type")
    op.drop_index("ix_quick_sync_jobs_state", table_name="quick_sync_jobs")
    op.drop_table("quick_sync_jobs")
