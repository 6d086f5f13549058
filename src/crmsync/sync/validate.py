"""Validate setup (B43): the connection checklist of :mod:`crmsync.dynamics.check` with what
the store knows, namely each table's field selection (every selected column must exist and be
readable), the sync filter (its column must exist where it is selected) and the enabled custom
entities (read privilege, change tracking and their fields, like any other table read one way).

``crmsync dynamics check`` and the admin Setup page both run :func:`validate_setup`, so they
show the same lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from crmsync.dynamics.check import DEFAULT_TABLES, ConnectionReport, check_connection
from crmsync.dynamics.client import DynamicsClient
from crmsync.store.tables import field_selection
from crmsync.sync.custom_entities import stored_entities
from crmsync.sync.filtering import SYNC_FILTER_ATTRIBUTE

CHECKED_STATUSES = ("selected", "quick_sync", "missing")
"""Field-selection statuses checked: what is synced, and what was selected but found deleted
(still selected until an admin saves the selection again)."""


def selected_columns(conn: Connection) -> dict[str, tuple[str, ...]]:
    """Each table's selected columns, in selection order (deleted ones included)."""
    rows = conn.execute(
        select(field_selection.c.entity, field_selection.c.attribute)
        .where(field_selection.c.status.in_(CHECKED_STATUSES))
        .order_by(field_selection.c.entity, field_selection.c.selected_at)
    ).all()
    selected: dict[str, list[str]] = {}
    for entity, attribute in rows:
        selected.setdefault(str(entity), []).append(str(attribute))
    return {entity: tuple(columns) for entity, columns in selected.items()}


def validate_setup(
    client: DynamicsClient, engine: Engine | None, tables: Sequence[str] = DEFAULT_TABLES
) -> ConnectionReport:
    """The checklist against the org behind ``client``; with ``engine``, also the field
    selection and sync filter stored there."""
    selected: dict[str, tuple[str, ...]] = {}
    checked = list(tables)
    if engine is not None:
        with engine.connect() as conn:
            selected = selected_columns(conn)
            for entity in stored_entities(conn, enabled_only=True):
                if entity.name not in checked:
                    checked.append(entity.name)
                selected[entity.name] = entity.fields
    filters = {
        table: SYNC_FILTER_ATTRIBUTE
        for table, columns in selected.items()
        if SYNC_FILTER_ATTRIBUTE in columns
    }
    return check_connection(client, checked, selected=selected, sync_filters=filters)
