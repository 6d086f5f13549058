"""Index persons by external company and sales person id, to link them to their records.

Revision ID: 0002_person_link_indexes
Revises: 0001_initial
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002_person_link_indexes"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_persons_external_company_id", "persons", ["external_company_id"], unique=False
    )
    op.create_index(
        "ix_persons_external_sales_person_id",
        "persons",
        ["external_sales_person_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_persons_external_sales_person_id", table_name="persons")
    op.drop_index("ix_persons_external_company_id", table_name="persons")
