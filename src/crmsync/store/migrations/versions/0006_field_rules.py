"""Per-field sync rules (B46): each selected column may override its entity's collision rule
and may refuse to overwrite a value with a blank.

Existing selections keep Marketo's rules: every row gets the entity default, blanks synced.

Revision ID: 0006_field_rules
Revises: 0005_campaigns
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_field_rules"
down_revision: str | None = "0005_campaigns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("field_selection") as batch:
        batch.add_column(
            sa.Column("sync_rule", sa.String(32), nullable=False, server_default="entity-default")
        )
        batch.add_column(
            sa.Column("never_blank", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("field_selection") as batch:
        batch.drop_column("never_blank")
        batch.drop_column("sync_rule")
