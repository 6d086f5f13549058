"""Smart-list counts from an index: a covering index for the country / lead score / CRM type
filters that campaigns syncing persons to Microsoft start with, matching case-insensitively as
the smart lists compare text (SQLite: ``COLLATE NOCASE`` on the plain columns, so the index
covers the query; PostgreSQL: ``lower(country)``, with the plain column included so an
index-only scan serves the count).

Revision ID: 0012_campaign_indexes
Revises: 0011_quick_sync_jobs
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_campaign_indexes"
down_revision: str | None = "0011_quick_sync_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_persons_smartlist_country"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX {INDEX} ON persons (lower(country), lead_score, crm_type) "
            "INCLUDE (country)"
        )
    else:
        op.execute(
            f"CREATE INDEX {INDEX} ON persons (country COLLATE NOCASE, lead_score, crm_type)"
        )


def downgrade() -> None:
    op.execute(f"DROP INDEX {INDEX}")
