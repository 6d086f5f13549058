"""Smart-list counts from an index for more of the common filters: state and lead status
(compared ignoring case, as smart lists compare text; see ``store/folded.py``) and the
created date. On PostgreSQL the text indexes are on ``lower(...)`` and INCLUDE the plain
column, so an index-only scan can serve the count; on SQLite they are on the plain column
with ``COLLATE NOCASE``. Company name is already served on PostgreSQL by
``ix_persons_company_lower`` (0014); the updated date by ``ix_persons_updated_at``.

Revision ID: 0017_smartlist_filter_indexes
Revises: 0014_admin_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017_smartlist_filter_indexes"
down_revision: str | None = "0016_open_error_codes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLDED = (
    ("ix_persons_smartlist_state", "state"),
    ("ix_persons_smartlist_lead_status", "lead_status"),
)
CREATED = "ix_persons_smartlist_created_at"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, column in FOLDED:
        if postgresql:
            op.execute(f"CREATE INDEX {name} ON persons (lower({column})) INCLUDE ({column})")
        else:
            op.execute(f"CREATE INDEX {name} ON persons ({column} COLLATE NOCASE)")
    op.create_index(CREATED, "persons", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(CREATED, table_name="persons")
    for name, _ in FOLDED:
        op.execute(f"DROP INDEX {name}")
