"""Custom entities (B45): the Dynamics tables the admin enabled, and indexes on the rows
read from them so smart lists and the REST API find a person's or company's records.

Revision ID: 0010_custom_entities
Revises: 0009_write_waits
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_custom_entities"
down_revision: str | None = "0009_write_waits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "custom_entities",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("entity_set", sa.String(128), nullable=False),
        sa.Column("primary_id", sa.String(128), nullable=False),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.Column("loaded_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_custom_entities"),
    )
    op.create_index("ix_custom_object_rows_person_id", "custom_object_rows", ["person_id"])
    op.create_index("ix_custom_object_rows_company_id", "custom_object_rows", ["company_id"])


def downgrade() -> None:
    op.drop_index("ix_custom_object_rows_company_id", table_name="custom_object_rows")
    op.drop_index("ix_custom_object_rows_person_id", table_name="custom_object_rows")
    op.drop_table("custom_entities")
