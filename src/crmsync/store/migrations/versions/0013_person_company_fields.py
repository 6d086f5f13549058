"""A person's company fields beyond name, industry, website, revenue and employees: billing
address (street, city, state, postal code, country), main phone and SIC code (B3, R40).

A person of a company shows the company's values; these columns hold the values of a person
without one.

Revision ID: 0013_person_company_fields
Revises: 0012_campaign_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_person_company_fields"
down_revision: str | None = "0012_campaign_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("billing_street", sa.Text()),
    ("billing_city", sa.String(length=255)),
    ("billing_state", sa.String(length=255)),
    ("billing_postal_code", sa.String(length=255)),
    ("billing_country", sa.String(length=255)),
    ("main_phone", sa.String(length=255)),
    ("sic_code", sa.String(length=255)),
)


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
