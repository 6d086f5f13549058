"""The mapping each entity is synced with, and what happens when Dynamics' schema or the
field selection changes under it (B9, B12, B14).

:class:`EntityMappings` builds an entity's mapping from the stored field selection (else the
default mapping restricted to what the org has) and keeps it while that selection holds, so
schemas are read once per process. A selected column Dynamics no longer has is dropped from
the mapping, marked *missing* in the selection and announced (B14). Columns selected after
go-live are read like the others; a quick sync job fills them for records that do not change
(B12, :mod:`crmsync.sync.quick_sync`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import EntitySchema
from crmsync.store.tables import field_selection, now_utc
from crmsync.sync.history import notify
from crmsync.sync.mapping import (
    ColumnChoice,
    EntityMapping,
    default_mapping,
    mapping_for_selection,
    rest_name_for,
)
from crmsync.sync.policy import FieldRule, SyncRule

SELECTED_STATUSES = ("selected", "quick_sync")
"""Field-selection statuses whose columns are read and written."""
DROPPED_STATUSES = ("missing", "type_changed")
"""Field-selection statuses of columns no longer synced until the selection is saved."""


class EntityMappings:
    """The mappings of the enabled entities, cached per selection.

    Keep one for a long-running sync: schemas are read from Dynamics once and reused, so a
    cycle with no changes costs one request per entity (B17).
    """

    def __init__(self, client: DynamicsClient, entities: Sequence[str]) -> None:
        self._client = client
        self._entities = tuple(entities)
        # per entity: the selected columns a mapping was built from, and the mapping
        self._cache: dict[str, tuple[tuple[ColumnChoice, ...], EntityMapping]] = {}

    def all(self, engine: Engine) -> dict[str, EntityMapping]:
        """The mapping of every enabled entity: the stored field selection (B9), else the
        default mapping restricted to what the org has. Schemas are read once."""
        with engine.begin() as conn:
            selected = selections(conn)
            return {
                entity: self.of(conn, entity, selected.get(entity, ())) for entity in self._entities
            }

    def one(self, engine: Engine, entity: str) -> EntityMapping:
        """The mapping of one enabled entity (see :meth:`all`); its schema is read once."""
        with engine.begin() as conn:
            return self.of(conn, entity, selections(conn, entity).get(entity, ()))

    def of(
        self,
        conn: Connection,
        entity: str,
        wanted: tuple[ColumnChoice, ...],
        *,
        fresh: bool = False,
    ) -> EntityMapping:
        """One entity's mapping for the ``wanted`` columns (none: the default mapping), reused
        while that selection holds unless ``fresh``. Selected columns the schema lacks are
        announced (B14)."""
        cached = self._cache.get(entity)
        if cached is not None and cached[0] == wanted and not fresh:
            return cached[1]
        schema = self._client.cached_schema(entity) or self._client.entity_schema(entity)
        changed = announce_type_changes(conn, schema, wanted)
        if changed:
            wanted = tuple(c for c in wanted if c.attribute not in changed)
        mapping = mapping_for_selection(schema, wanted) if wanted else default_mapping(schema)
        if mapping.missing:  # selected columns Dynamics no longer has (B14)
            known = {m.attribute: m.field for m in cached[1].fields} if cached else {}
            names = {a: known.get(a) or rest_name_for(a) for a in mapping.missing}
            announce_missing(conn, entity, names)
            wanted = tuple(c for c in wanted if c.attribute not in mapping.missing)  # now missing
        self._cache[entity] = (wanted, mapping)
        return mapping

    def drop_deleted_columns(
        self, engine: Engine, entity: str, mappings: dict[str, EntityMapping]
    ) -> list[str]:
        """B14: read ``entity``'s schema again; columns the mapping reads that Dynamics no
        longer has are left out of the mapping (in ``mappings`` too) and announced (see
        :func:`announce_missing`). Returns them."""
        before = mappings[entity]
        self._client.entity_schema(entity)  # fresh, replacing the cached schema
        with engine.begin() as conn:
            wanted = selections(conn, entity).get(entity, ())
            after = self.of(conn, entity, wanted, fresh=True)
            dropped = [a for a in before.field_attributes if a not in after.field_attributes]
            # also a default mapping's columns, which have no selection row to mark
            names = {m.attribute: m.field for m in before.fields if m.attribute in dropped}
            announce_missing(conn, entity, names)
        if dropped:
            mappings[entity] = after
        return dropped


def selections(conn: Connection, entity: str | None = None) -> dict[str, tuple[ColumnChoice, ...]]:
    """The stored field selection in effect (selected or waiting for a quick sync), per entity
    in selection order, each column with its marketing field and sync rule (B46): one query
    for every entity, or for ``entity``."""
    query = select(
        field_selection.c.entity,
        field_selection.c.attribute,
        field_selection.c.marketing_field,
        field_selection.c.sync_rule,
        field_selection.c.never_blank,
    ).where(field_selection.c.status.in_(SELECTED_STATUSES))
    if entity is not None:
        query = query.where(field_selection.c.entity == entity)
    selected: dict[str, list[ColumnChoice]] = {}
    for name, attribute, field, sync_rule, never_blank in conn.execute(
        query.order_by(field_selection.c.entity, field_selection.c.selected_at)
    ):
        rule = FieldRule(SyncRule(sync_rule or SyncRule.ENTITY_DEFAULT.value), bool(never_blank))
        choice = ColumnChoice(str(attribute), str(field) if field else None, rule)
        selected.setdefault(str(name), []).append(choice)
    return {name: tuple(columns) for name, columns in selected.items()}


def announce_type_changes(
    conn: Connection, schema: EntitySchema, wanted: Sequence[ColumnChoice]
) -> set[str]:
    """Selected columns whose Dynamics type is no longer the one they were selected with:
    marked *type_changed* (no longer read or written, their marketing values kept, nothing
    converted) and announced with one critical notification per column. Returns them."""
    entity = schema.logical_name
    names = [c.attribute for c in wanted]
    if not names:
        return set()
    stored = {
        str(attribute): str(kind)
        for attribute, kind in conn.execute(
            select(field_selection.c.attribute, field_selection.c.attribute_type).where(
                field_selection.c.entity == entity,
                field_selection.c.attribute.in_(names),
                field_selection.c.attribute_type.is_not(None),
            )
        )
    }
    changed = {
        name: (was, schema.attributes[name].type.value)
        for name, was in stored.items()
        if name in schema.attributes and schema.attributes[name].type.value != was
    }
    if not changed:
        return set()
    conn.execute(
        field_selection.update()
        .where(field_selection.c.entity == entity, field_selection.c.attribute.in_(changed))
        .values(status="type_changed", updated_at=now_utc())
    )
    for attribute, (was, now) in changed.items():
        notify(
            conn,
            severity="critical",
            kind="field_type_changed",
            title=f"Field {entity}.{attribute} changed type in Dynamics",
            message=(
                f"{entity}.{attribute} was {was} when it was selected and is {now} in Dynamics "
                "now. crmsync stopped syncing it rather than convert its values, and kept its "
                "marketing values; everything else keeps syncing. Save the field selection to "
                "drop it, then select it again to sync it as the new type."
            ),
            dedupe_key=f"field_type_changed:{entity}:{attribute}",
        )
    return set(changed)


def announce_missing(conn: Connection, entity: str, fields: Mapping[str, str]) -> None:
    """B14: mark selected columns Dynamics no longer has as *missing* in the field selection
    (no longer read or written) and raise one critical notification per column; ``fields``
    maps each column to its marketing field, whose values are kept."""
    if not fields:
        return
    conn.execute(
        field_selection.update()
        .where(
            field_selection.c.entity == entity,
            field_selection.c.attribute.in_(list(fields)),
            field_selection.c.status != "missing",
        )
        .values(status="missing", updated_at=now_utc())
    )
    for attribute, name in fields.items():
        notify(
            conn,
            severity="critical",
            kind="field_missing",
            title=f"Field {entity}.{attribute} was deleted in Dynamics",
            message=(
                f"crmsync stopped syncing {entity}.{attribute} (marketing field {name}) and "
                "kept its marketing values; everything else keeps syncing. Save the field "
                "selection to clear this."
            ),
            dedupe_key=f"field_missing:{entity}:{attribute}",
        )
