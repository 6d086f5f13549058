"""Custom entities (B45, R96–R102): which Dynamics tables can be enabled, enabling one with its
fields, disabling it, and what is stored for each.

:func:`discover` lists the tables linked to lead, contact or account one or two levels deep
that the sync user may read (R97), each once on its nearest path (R102). :func:`enable`
stores the choice in ``custom_entities``; the next sync cycle does its initial load and then
reads its changes like any other entity (:mod:`crmsync.sync.custom_reader`). Disabling keeps
the records and stops reading. Records are never written to Dynamics. There is no name-length
limit of crmsync's own (Marketo's is 33 characters, R100).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.relations import TableHeader, read_lookups, read_tables
from crmsync.dynamics.types import AttributeType, EntitySchema
from crmsync.errors import (
    ConfigurationError,
    InvalidValueError,
    RecordNotFoundError,
    UnknownFieldError,
)
from crmsync.store.audit import record_audit
from crmsync.store.tables import custom_entities, custom_object_rows, now_utc
from crmsync.sync.cursors import read_cursor
from crmsync.sync.custom_paths import LinkPath, nearest_paths

CURSOR_PREFIX = "custom:"
"""Custom entities keep their change-tracking links under ``custom:<logical name>``."""

_READABLE_TYPES = frozenset(
    {
        AttributeType.STRING,
        AttributeType.MEMO,
        AttributeType.INTEGER,
        AttributeType.BIGINT,
        AttributeType.DECIMAL,
        AttributeType.DOUBLE,
        AttributeType.MONEY,
        AttributeType.BOOLEAN,
        AttributeType.DATETIME,
        AttributeType.PICKLIST,
        AttributeType.STATE,
        AttributeType.STATUS,
        AttributeType.LOOKUP,
        AttributeType.CUSTOMER,
        AttributeType.OWNER,
    }
)
DEFAULT_SYSTEM_FIELDS = ("statecode", "createdon", "modifiedon")
"""The Dynamics system columns read with an entity's own columns when none are chosen."""
_REST_TYPES = {
    AttributeType.STRING: "string",
    AttributeType.MEMO: "text",
    AttributeType.INTEGER: "integer",
    AttributeType.BIGINT: "integer",
    AttributeType.DECIMAL: "float",
    AttributeType.DOUBLE: "float",
    AttributeType.MONEY: "currency",
    AttributeType.BOOLEAN: "boolean",
    AttributeType.DATETIME: "datetime",
    AttributeType.PICKLIST: "integer",
    AttributeType.STATE: "integer",
    AttributeType.STATUS: "integer",
}
"""The Marketo data type each Dynamics column type is described with (lookups: string)."""


def cursor_key(name: str) -> str:
    """Where a custom entity's change-tracking link is stored."""
    return f"{CURSOR_PREFIX}{name}"


@dataclass(frozen=True, slots=True)
class CustomEntityChoice:
    """A table that can be enabled as a custom entity, as discovery found it."""

    name: str
    display_name: str
    entity_set: str
    primary_id: str
    is_custom: bool
    change_tracking: bool
    path: LinkPath
    enabled: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The choice as ``--json`` and the admin API show it."""
        return {
            "name": self.name,
            "displayName": self.display_name,
            "isCustom": self.is_custom,
            "changeTracking": self.change_tracking,
            "linkedTo": self.path.root,
            "depth": self.path.depth,
            "path": self.path.describe(),
            "enabled": self.enabled,
        }


@dataclass(frozen=True, slots=True)
class CustomEntity:
    """An enabled (or disabled) custom entity as stored."""

    name: str
    display_name: str
    entity_set: str
    primary_id: str
    path: LinkPath
    fields: tuple[str, ...]
    enabled: bool
    created_at: datetime
    loaded_at: datetime | None
    field_info: tuple[Mapping[str, str], ...] = ()
    """Per field: ``name``, ``displayName`` and Marketo ``dataType``."""

    @property
    def link_kind(self) -> str:
        """``person`` or ``company``: what its records are linked to."""
        return self.path.link_kind


@dataclass(frozen=True, slots=True)
class CustomEntityStatus:
    """What is stored for one custom entity and where its reading stands."""

    entity: CustomEntity
    records: int
    linked: int
    deleted: int
    phase: str  # "waiting" | "initial load" | "changes"

    def as_dict(self) -> dict[str, Any]:
        """The status as ``--json`` and the admin API show it."""
        entity = self.entity
        return {
            "name": entity.name,
            "displayName": entity.display_name,
            "enabled": entity.enabled,
            "linkedTo": entity.path.root,
            "path": entity.path.describe(),
            "fields": list(entity.fields),
            "phase": self.phase,
            "records": self.records,
            "linked": self.linked,
            "deleted": self.deleted,
            "loadedAt": entity.loaded_at.isoformat() if entity.loaded_at else None,
        }


def discover(client: DynamicsClient, conn: Connection | None = None) -> list[CustomEntityChoice]:
    """The tables the sync user may read that are linked to lead, contact or account one or
    two levels deep through tables it may read (R97), each on its nearest path (R102), sorted
    by name (three metadata requests)."""
    privileges = client.user_privileges()
    readable = {
        table.logical_name: table
        for table in read_tables(client.transport)
        if privileges.can("Read", table.schema_name)
    }
    # a path runs only through tables the sync user may read: their rows link the records
    lookups = [
        lookup
        for lookup in read_lookups(client.transport)
        if lookup.referencing in readable and lookup.referenced in readable
    ]
    paths = nearest_paths(lookups)
    enabled = _enabled_names(conn) if conn is not None else set()
    return [
        _choice(readable[name], paths[name], name in enabled)
        for name in sorted(paths)
        if name in readable
    ]


def _choice(table: TableHeader, path: LinkPath, enabled: bool) -> CustomEntityChoice:
    return CustomEntityChoice(
        name=table.logical_name,
        display_name=table.display_name,
        entity_set=table.entity_set,
        primary_id=table.primary_id,
        is_custom=table.is_custom,
        change_tracking=table.change_tracking,
        path=path,
        enabled=enabled,
    )


def _enabled_names(conn: Connection) -> set[str]:
    query = select(custom_entities.c.name).where(custom_entities.c.enabled.is_(True))
    return {str(name) for name in conn.execute(query).scalars()}


def enable(
    engine: Engine,
    client: DynamicsClient,
    name: str,
    fields: Sequence[str] | None = None,
    *,
    actor: str = "cli",
) -> CustomEntity:
    """Enable ``name`` with ``fields`` (default: its name, its own custom columns, state and
    dates); the lookups of its path are always read. Re-enabling a disabled entity continues
    from where its reading stopped. The next sync cycle loads it (R99)."""
    wanted = name.strip().lower()
    choices = {choice.name: choice for choice in discover(client)}
    choice = choices.get(wanted)
    if choice is None:
        raise InvalidValueError(
            f"{name!r} cannot be a custom entity: it is not a table linked to a lead, contact "
            "or account one or two levels deep that the sync user may read "
            "(see 'crmsync entities list')"
        )
    if not choice.change_tracking:
        raise ConfigurationError(
            f"change tracking is off for {wanted} in Dynamics; turn it on for the table "
            "(Settings → Customizations → the table → Track changes), then enable it again"
        )
    schema = client.entity_schema(wanted)
    selected = [
        {
            "name": name,
            "displayName": schema.attributes[name].display_name or name,
            "dataType": _REST_TYPES.get(schema.attributes[name].type, "string"),
        }
        for name in _fields(schema, choice.path, fields)
    ]
    stamp = now_utc()
    row = {
        "display_name": choice.display_name,
        "entity_set": choice.entity_set,
        "primary_id": choice.primary_id,
        "path": choice.path.as_list(),
        "fields": selected,
        "enabled": True,
        "updated_at": stamp,
    }
    with engine.begin() as conn:
        changed = conn.execute(
            update(custom_entities).where(custom_entities.c.name == wanted).values(**row)
        ).rowcount
        if not changed:
            conn.execute(insert(custom_entities).values(name=wanted, created_at=stamp, **row))
        names = [f["name"] for f in selected]
        record_audit(conn, actor, "custom_entity_enabled", {"entity": wanted, "fields": names})
        stored = load_entity(conn, wanted)
    assert stored is not None
    return stored


def _fields(schema: EntitySchema, path: LinkPath, asked: Sequence[str] | None) -> tuple[str, ...]:
    attributes = schema.attributes
    own = path.hops[0].attribute
    if asked:
        names = [a.strip().lower() for a in asked if a.strip()]
        unknown = [n for n in names if n not in attributes or not attributes[n].can_read]
        if unknown:
            raise UnknownFieldError(
                f"{schema.logical_name} has no readable field named {', '.join(unknown)}",
                entity=schema.logical_name,
            )
    else:
        names = [
            a.logical_name
            for a in attributes.values()
            if (a.logical_name == schema.primary_name or a.is_custom)
            and a.can_read
            and a.valid_for_read
            and a.type in _READABLE_TYPES
        ]
        names += [n for n in DEFAULT_SYSTEM_FIELDS if n in attributes]
    return tuple(dict.fromkeys([own, *sorted(names)]))


def disable(engine: Engine, name: str, *, actor: str = "cli") -> CustomEntity:
    """Stop reading ``name``; its records stay (readable, in smart lists)."""
    return switch(engine, name, False, actor=actor)


def switch(engine: Engine, name: str, enabled: bool, *, actor: str = "cli") -> CustomEntity:
    """Disable a custom entity, or enable again one that was enabled before (its path and
    fields as chosen then; its reading continues where it stopped). Audited."""
    wanted = name.strip().lower()
    with engine.begin() as conn:
        changed = conn.execute(
            update(custom_entities)
            .where(custom_entities.c.name == wanted)
            .values(enabled=enabled, updated_at=now_utc())
        ).rowcount
        if not changed:
            raise RecordNotFoundError(
                f"{name!r} was never enabled as a custom entity", entity=wanted
            )
        action = "custom_entity_enabled" if enabled else "custom_entity_disabled"
        record_audit(conn, actor, action, {"entity": wanted})
        stored = load_entity(conn, wanted)
    assert stored is not None
    return stored


def recent_records(conn: Connection, entity: CustomEntity, limit: int = 50) -> list[dict[str, Any]]:
    """The last ``limit`` records stored for ``entity`` (newest change first): Dynamics id,
    linked person or company, values, deleted flag, when stored."""
    rows = conn.execute(
        select(custom_object_rows)
        .where(custom_object_rows.c.entity == entity.name)
        .order_by(custom_object_rows.c.updated_at.desc(), custom_object_rows.c.id.desc())
        .limit(max(1, limit))
    ).mappings()
    return [
        {
            "crm_id": str(row["crm_id"]),
            "person_id": row["person_id"],
            "company_id": row["company_id"],
            "values": dict(row["values"] or {}),
            "deleted": bool(row["crm_is_deleted"]),
            "updated_at": row["updated_at"],
        }
        for row in rows
    ]


def _entity(row: RowMapping) -> CustomEntity:
    return CustomEntity(
        name=str(row["name"]),
        display_name=str(row["display_name"]),
        entity_set=str(row["entity_set"]),
        primary_id=str(row["primary_id"]),
        path=LinkPath.from_list(row["path"]),
        fields=tuple(str(f["name"]) for f in row["fields"]),
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        loaded_at=row["loaded_at"],
        field_info=tuple(dict(f) for f in row["fields"]),
    )


def load_entity(conn: Connection, name: str) -> CustomEntity | None:
    """The stored custom entity called ``name`` (enabled or not), or ``None``."""
    row = conn.execute(
        select(custom_entities).where(custom_entities.c.name == name.strip().lower())
    ).first()
    return None if row is None else _entity(row._mapping)


def stored_entities(conn: Connection, *, enabled_only: bool = False) -> list[CustomEntity]:
    """Every stored custom entity (or only the enabled ones), by name."""
    query = select(custom_entities).order_by(custom_entities.c.name)
    if enabled_only:
        query = query.where(custom_entities.c.enabled.is_(True))
    return [_entity(row._mapping) for row in conn.execute(query)]


def entity_status(conn: Connection, entity: CustomEntity) -> CustomEntityStatus:
    """How many records ``entity`` has (linked, flagged deleted) and where its reading is."""
    link = (
        custom_object_rows.c.company_id
        if entity.link_kind == "company"
        else (custom_object_rows.c.person_id)
    )
    deleted = custom_object_rows.c.crm_is_deleted.is_(True)
    counts = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((link.is_not(None) & ~deleted, 1), else_=0)), 0),
            func.coalesce(func.sum(case((deleted, 1), else_=0)), 0),
        ).where(custom_object_rows.c.entity == entity.name)
    ).one()
    cursor = read_cursor(conn, cursor_key(entity.name))
    phase = "waiting" if cursor is None else "changes" if cursor.initial_done else "initial load"
    return CustomEntityStatus(entity, int(counts[0]), int(counts[1]), int(counts[2]), phase)
