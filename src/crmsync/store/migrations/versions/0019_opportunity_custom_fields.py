"""Opportunities keep the values of custom fields, as companies and persons do: a ``custom``
JSON column, filled from the custom columns of Dynamics opportunities an admin selects (B11).

Revision ID: 0019_opportunity_custom_fields
Revises: 0017_smartlist_filter_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_opportunity_custom_fields"
down_revision: str | None = "0018_error_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("opportunities") as batch:
        batch.add_column(sa.Column("custom", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("opportunities") as batch:
        batch.drop_column("custom")
