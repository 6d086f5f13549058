"""PostgreSQL: activity ids follow commit order, so paging by id never skips one (spec §5.2).

Readers page the activity log with ``id > last id``. PostgreSQL takes ids from a sequence when
a row is inserted but transactions commit in any order, so an activity with a smaller id could
become visible after a reader had already moved past a larger one, and be lost to it. A
statement-level trigger makes every insert into ``activities`` first take a transaction-level
advisory lock (one per schema), held until commit: the writers of activities then get their ids
and commit one after another, whoever inserts (the marketing services, the sync engine).
Callers write their activities last in a transaction, which keeps the wait short. SQLite needs
nothing: it has one writer at a time.

Revision ID: 0003_activity_commit_order
Revises: 0002_person_link_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_activity_commit_order"
down_revision: str | None = "0002_person_link_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION crmsync_activities_commit_order() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(
                hashtextextended('crmsync:activities:' || TG_TABLE_SCHEMA, 0)
            );
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER activities_commit_order BEFORE INSERT ON activities "
        "FOR EACH STATEMENT EXECUTE FUNCTION crmsync_activities_commit_order()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS activities_commit_order ON activities")
    op.execute("DROP FUNCTION IF EXISTS crmsync_activities_commit_order()")
