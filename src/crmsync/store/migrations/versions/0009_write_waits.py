"""Writes that wait per entity: the sync user lost a privilege Dynamics needs for them, so
the entity's changes stay queued (and visible) until it is granted again.

Revision ID: 0009_write_waits
Revises: 0008_microsoft_campaigns
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_write_waits"
down_revision: str | None = "0008_microsoft_campaigns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "write_waits",
        sa.Column("entity", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("privileges", sa.String(255), nullable=False),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("since", _UTC, nullable=False),
        sa.Column("checked_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("entity", name="pk_write_waits"),
    )


def downgrade() -> None:
    op.drop_table("write_waits")
