"""Change-tracking cursors say which read they continue: a finished read's delta link, or the
next page of an unfinished initial read (B16: a crashed initial sync resumes where it stopped).

Existing rows are delta links (only those were ever stored).

Revision ID: 0004_cursor_phase
Revises: 0003_activity_commit_order
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_cursor_phase"
down_revision: str | None = "0003_activity_commit_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "delta_cursors",
        sa.Column("phase", sa.String(16), nullable=False, server_default="delta"),
    )


def downgrade() -> None:
    op.execute("DELETE FROM delta_cursors WHERE phase <> 'delta'")
    with op.batch_alter_table("delta_cursors") as batch:
        batch.drop_column("phase")
