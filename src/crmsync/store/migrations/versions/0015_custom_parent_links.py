"""Each custom-entity record keeps the id its own lookup holds (its parent row), indexed, so a
record whose parent moves to another person or company is re-linked with one set-based update
(B45). Records stored before this revision get it from their stored values.

Revision ID: 0015_custom_parent_links
Revises: 0014_admin_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_custom_parent_links"
down_revision: str | None = "0014_admin_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_custom_object_rows_entity_parent"


def upgrade() -> None:
    with op.batch_alter_table("custom_object_rows") as batch:
        batch.add_column(sa.Column("parent_crm_id", sa.String(64), nullable=True))
    op.create_index(_INDEX, "custom_object_rows", ["entity", "parent_crm_id"])
    _fill_parents()


def _fill_parents() -> None:
    """The parent id of every stored record: the value of its path's first lookup."""
    conn = op.get_bind()
    entities = sa.table("custom_entities", sa.column("name"), sa.column("path", sa.JSON()))
    rows = sa.table(
        "custom_object_rows",
        sa.column("id"),
        sa.column("entity"),
        sa.column("values", sa.JSON()),
        sa.column("parent_crm_id"),
    )
    for name, path in conn.execute(sa.select(entities.c.name, entities.c.path)).all():
        attribute = str(path[0]["attribute"])
        found = conn.execute(sa.select(rows.c.id, rows.c["values"]).where(rows.c.entity == name))
        updates = [
            {"row_id": row_id, "parent": str(values[attribute]).lower()}
            for row_id, values in found
            if values and values.get(attribute)
        ]
        if updates:
            conn.execute(
                sa.update(rows)
                .where(rows.c.id == sa.bindparam("row_id"))
                .values(parent_crm_id=sa.bindparam("parent")),
                updates,
            )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="custom_object_rows")
    with op.batch_alter_table("custom_object_rows") as batch:
        batch.drop_column("parent_crm_id")
