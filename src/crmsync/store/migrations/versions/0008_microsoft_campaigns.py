"""Campaign Sync: Dynamics campaigns read into the marketing database (B47) and the members
crmsync's Add to Microsoft Campaign step added to their marketing lists (R82, R83); "once
every N days" qualification, Wait steps (an event paused until a time) and recurring
schedules.

Revision ID: 0008_microsoft_campaigns
Revises: 0007_admin_users
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_microsoft_campaigns"
down_revision: str | None = "0007_admin_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "microsoft_campaigns",
        sa.Column("crm_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("statecode", sa.Integer(), nullable=True),
        sa.Column("statuscode", sa.Integer(), nullable=True),
        sa.Column("leads_list_id", sa.String(64), nullable=True),
        sa.Column("contacts_list_id", sa.String(64), nullable=True),
        sa.Column("synced_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("crm_id", name="pk_microsoft_campaigns"),
    )
    op.create_index("ix_microsoft_campaigns_name", "microsoft_campaigns", ["name"])
    op.create_table(
        "microsoft_campaign_members",
        sa.Column("crm_campaign_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("crm_member_id", sa.String(64), nullable=False),
        sa.Column("list_id", sa.String(64), nullable=False),
        sa.Column("added_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint(
            "crm_campaign_id", "person_id", name="pk_microsoft_campaign_members"
        ),
    )
    op.create_index(
        "ix_microsoft_campaign_members_person_id", "microsoft_campaign_members", ["person_id"]
    )

    op.add_column("campaigns", sa.Column("qualification_days", sa.Integer(), nullable=True))
    op.add_column("campaign_events", sa.Column("run_after", _UTC, nullable=True))
    op.add_column("campaign_schedules", sa.Column("repeat_every_days", sa.Integer(), nullable=True))
    op.add_column("campaign_schedules", sa.Column("repeat_until", _UTC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_schedules") as batch:
        batch.drop_column("repeat_until")
        batch.drop_column("repeat_every_days")
    with op.batch_alter_table("campaign_events") as batch:
        batch.drop_column("run_after")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("qualification_days")
    op.drop_index(
        "ix_microsoft_campaign_members_person_id", table_name="microsoft_campaign_members"
    )
    op.drop_table("microsoft_campaign_members")
    op.drop_index("ix_microsoft_campaigns_name", table_name="microsoft_campaigns")
    op.drop_table("microsoft_campaigns")
