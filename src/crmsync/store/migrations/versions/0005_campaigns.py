"""Smart campaigns: definitions, the durable trigger outbox, members, schedules and per-step
results (issue 10, B31-B36).

Revision ID: 0005_campaigns
Revises: 0004_cursor_phase
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_campaigns"
down_revision: str | None = "0004_cursor_phase"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("qualification", sa.String(length=16), nullable=False),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("smart_list", sa.JSON(), nullable=False),
        sa.Column("flow", sa.JSON(), nullable=False),
        sa.Column("program_name", sa.String(length=255), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "campaign_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("source_campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("claimed_by", sa.String(length=255), nullable=True),
        sa.Column("claimed_until", _UTC, nullable=True),
        sa.Column("processed_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_events_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_campaign_events_pending", "campaign_events", ["processed_at", "id"], unique=False
    )
    op.create_table(
        "campaign_members",
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("first_at", _UTC, nullable=False),
        sa.Column("last_at", _UTC, nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_members_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "person_id", name=op.f("pk_campaign_members")),
    )
    op.create_index(
        "ix_campaign_members_person_id", "campaign_members", ["person_id"], unique=False
    )
    op.create_table(
        "campaign_schedules",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("run_at", _UTC, nullable=False),
        sa.Column("tokens", sa.JSON(), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("started_at", _UTC, nullable=True),
        sa.Column("queued", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_schedules_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_schedules")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_campaign_schedules_due", "campaign_schedules", ["started_at", "run_at"], unique=False
    )
    op.create_table(
        "campaign_results",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_type", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_results_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_results")),
        sa.UniqueConstraint("event_id", "step_index", name="uq_campaign_results_event_step"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_campaign_results_campaign", "campaign_results", ["campaign_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_results_campaign", table_name="campaign_results")
    op.drop_table("campaign_results")
    op.drop_index("ix_campaign_schedules_due", table_name="campaign_schedules")
    op.drop_table("campaign_schedules")
    op.drop_index("ix_campaign_members_person_id", table_name="campaign_members")
    op.drop_table("campaign_members")
    op.drop_index("ix_campaign_events_pending", table_name="campaign_events")
    op.drop_table("campaign_events")
    op.drop_table("campaigns")
