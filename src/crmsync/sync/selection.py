"""The admin's field selection: what Dynamics offers, and saving a choice (B8–B14, B46).

:func:`columns_of` reads a table's schema from Dynamics and tells, column by column, whether
it can sync, whether it is selected (or *missing*, B14), the marketing field it maps to and
its sync rule.

:func:`save_selection` stores the selected columns of one table, always after reading the
schema again (B13). A column Dynamics does not have is refused: crmsync never creates a field
in Dynamics (B10); nor can a column the sync user may not read be selected (B8). A column
selected after the table's initial sync is marked ``quick_sync`` and queued for a quick sync
job (:mod:`crmsync.sync.quick_sync`), which fills the new fields from Dynamics beside the
regular sync and marks them ``selected`` when done (B12); until then they cannot be
deselected. Saving drops columns marked *missing* (B14) or *type_changed* (their type in
Dynamics is no longer the one they were selected with; select them again to sync them with
the new type). A selected custom column gets its marketing field in the field catalog, so the
REST API can read and write it at once (B11), unless the admin maps it onto an existing
marketing field of a compatible type (``websiteurl=website``). Each selected column may carry
a per-field sync rule (B46). Every change of selection, mapping or
rule is recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import AttributeSchema, EntitySchema
from crmsync.errors import InvalidValueError
from crmsync.marketing.fields import FieldCatalog, add_local_field, load_catalog
from crmsync.store.tables import field_selection, notifications, now_utc
from crmsync.sync.cursors import read_cursor
from crmsync.sync.field_choices import (
    SelectionChange,
    audit_changes,
    check_existing_field,
    check_rule,
    column_data_type,
    parse_column,
)
from crmsync.sync.mapping import (
    ColumnChoice,
    EntityMapping,
    default_mapping,
    mapping_for_selection,
    readable,
)
from crmsync.sync.policy import DEFAULT_FIELD_RULE, FieldRule, SyncRule
from crmsync.sync.quick_sync_jobs import busy_columns, queue_job
from crmsync.sync.schema_drift import DROPPED_STATUSES

CATALOG_OBJECT = {
    "lead": "person",
    "contact": "person",
    "account": "company",
    "opportunity": "opportunity",
}
"""The marketing object whose field catalog holds each table's fields (others: none yet)."""


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One Dynamics column as the selection sees it."""

    attribute: str
    display_name: str
    type: str
    max_length: int | None
    required_level: str
    can_sync: bool  # readable by the sync user, of a type crmsync converts
    status: str | None  # selected | quick_sync | missing | type_changed | None (not selected)
    marketing_field: str | None
    two_way: bool
    sync_rule: str | None = None  # the per-field rule's name (B46); None: not selected
    never_blank: bool = False


@dataclass(frozen=True, slots=True)
class SavedSelection:
    """What saving changed: columns added or mapped onto another field (and whether they wait
    for a quick sync), removed, and those whose sync rule changed."""

    entity: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    quick_sync: bool
    mapping: EntityMapping
    rules_changed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredColumn:
    """One stored row of the field selection."""

    status: str
    choice: ColumnChoice


def stored_columns(conn: Connection, entity: str) -> dict[str, StoredColumn]:
    """The stored selection of ``entity`` with each column's field and rule, in order."""
    rows = conn.execute(
        select(
            field_selection.c.attribute,
            field_selection.c.status,
            field_selection.c.marketing_field,
            field_selection.c.sync_rule,
            field_selection.c.never_blank,
        )
        .where(field_selection.c.entity == entity)
        .order_by(field_selection.c.selected_at)
    ).all()
    return {
        str(attribute): StoredColumn(
            str(status),
            ColumnChoice(
                str(attribute),
                str(field) if field else None,
                FieldRule(SyncRule(rule or SyncRule.ENTITY_DEFAULT.value), bool(never_blank)),
            ),
        )
        for attribute, status, field, rule, never_blank in rows
    }


def stored_selection(conn: Connection, entity: str) -> dict[str, str]:
    """The stored selection of ``entity``: column → status, in selection order."""
    return {name: column.status for name, column in stored_columns(conn, entity).items()}


def columns_of(conn: Connection, client: DynamicsClient, entity: str) -> list[ColumnInfo]:
    """Every column of ``entity`` in Dynamics now (a fresh schema read, B8), with its selection
    state, marketing field and sync rule; selected columns Dynamics no longer has are listed
    as *missing* (B14)."""
    schema = client.entity_schema(entity)
    stored = stored_columns(conn, entity)
    current = _current(schema, {name: column.status for name, column in stored.items()})
    mapping = mapping_for_selection(
        schema, [stored[c].choice if c in stored else ColumnChoice(c) for c in current]
    )
    fields = {m.attribute: m for m in mapping.fields}
    statuses = {n: c.status for n, c in stored.items()} or dict.fromkeys(current, "selected")
    result: list[ColumnInfo] = []
    for name, attr in sorted(schema.attributes.items()):
        status = statuses.get(name)
        rule = stored[name].choice.rule if name in stored else DEFAULT_FIELD_RULE
        result.append(
            ColumnInfo(
                attribute=name,
                display_name=attr.display_name,
                type=attr.type.value,
                max_length=attr.max_length,
                required_level=attr.required_level,
                can_sync=readable(attr),
                status=status,
                marketing_field=fields[name].field if name in fields else None,
                two_way=fields[name].two_way if name in fields else False,
                sync_rule=rule.sync_rule.value if status is not None else None,
                never_blank=rule.never_blank,
            )
        )
    result += [
        ColumnInfo(
            name,
            "",
            "",
            None,
            "None",
            False,
            "missing",
            column.choice.field,
            False,
            column.choice.rule.sync_rule.value,
            column.choice.rule.never_blank,
        )
        for name, column in stored.items()
        if name not in schema.attributes
    ]
    return result


def save_selection(
    conn: Connection,
    client: DynamicsClient,
    entity: str,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    rules: Mapping[str, FieldRule | str] | None = None,
    actor: str = "cli",
    modified_since: datetime | None = None,
    modified_until: datetime | None = None,
) -> SavedSelection:
    """Save the selection of ``entity``: the one in effect, plus ``add``, minus ``remove``,
    with the sync ``rules`` given per column (B46; a :class:`FieldRule` or its name, such as
    ``"dynamics-wins"``), after reading the schema again (B13). Saving without changes clears
    missing columns (B14). ``add`` entries are ``COL`` or ``COL=FIELD``: the latter maps the
    column onto the existing marketing field ``FIELD`` (also for a column already selected).
    Every change is recorded in the audit trail under ``actor``. Columns added after the
    initial sync are queued for a quick sync (B12), limited to records modified between
    ``modified_since`` and ``modified_until`` when given.

    Raises :class:`~crmsync.errors.InvalidValueError` naming every added column Dynamics does
    not have (B10) or the sync user cannot read (B8), a marketing field that does not exist or
    cannot hold the column's values, a rule for a column that is not selected, and a rule that
    would write to Dynamics a field it takes no values for, and the removal of a column a
    quick sync is still filling; nothing is stored then.
    """
    if modified_since and modified_until and modified_since > modified_until:
        raise InvalidValueError(
            f"{entity}: the date range ends ({modified_until:%Y-%m-%d %H:%M}) before it starts "
            f"({modified_since:%Y-%m-%d %H:%M})",
            entity=entity,
        )
    _refuse_busy(conn, entity, _names(remove))
    schema = client.entity_schema(entity)
    adding = _parse_adds(add)
    unknown = [c for c in adding if c not in schema.attributes]
    if unknown:
        raise InvalidValueError(
            f"{entity} has no column {', '.join(unknown)} in Dynamics; crmsync never creates "
            "fields in Dynamics: create the column there first, then select it",
            entity=entity,
        )
    unreadable = [c for c in adding if not readable(schema.attributes[c])]
    if unreadable:
        raise InvalidValueError(
            f"{entity}: {', '.join(unreadable)} cannot be synced (secured from the sync user, "
            "not readable, or of a type crmsync does not convert)",
            entity=entity,
        )
    stored = stored_columns(conn, entity)
    before = {c: s.choice for c, s in stored.items() if s.status not in DROPPED_STATUSES} or {
        c: ColumnChoice(c) for c in _current(schema, {})
    }
    dropping = set(_names(remove))
    # columns deleted in Dynamics since the last save go too (B14)
    kept = [c for c in before if c in schema.attributes and c not in dropping]
    wanted = [*kept, *(c for c in adding if c not in kept and c not in dropping)]
    new_rules = _parse_rules(entity, rules or {}, wanted)
    catalog = _catalog_of(conn, entity) if any(adding.values()) else None
    choices = []
    for column in wanted:
        previous = before.get(column)
        field = previous.field if previous is not None else None
        if adding.get(column):
            field = _existing_field(entity, schema.attributes[column], catalog, adding[column])
        rule = new_rules.get(column, previous.rule if previous is not None else None)
        choices.append(ColumnChoice(column, field, rule or DEFAULT_FIELD_RULE))
    mapping = mapping_for_selection(schema, choices)  # refuses two columns on one field
    for mapped in mapping.fields:
        check_rule(entity, mapped)
    after = {
        c.attribute: ColumnChoice(c.attribute, _field_of(mapping, c.attribute), c.rule)
        for c in choices
    }
    was = _effective(schema, before)
    added = [c for c in wanted if c not in was or was[c].field != after[c].field]
    removed = [c for c in was if c not in after]
    cursor = read_cursor(conn, entity)
    live = cursor is not None and cursor.initial_done
    stamp = now_utc()
    conn.execute(delete(field_selection).where(field_selection.c.entity == entity))
    conn.execute(
        insert(field_selection),
        [
            {
                "entity": entity,
                "attribute": column,
                "marketing_field": after[column].field,
                "status": "quick_sync"
                if live
                and (
                    column in added or (column in stored and stored[column].status == "quick_sync")
                )
                else "selected",
                "sync_rule": after[column].rule.sync_rule.value,
                "never_blank": after[column].rule.never_blank,
                "attribute_type": schema.attributes[column].type.value,
                "selected_at": stamp + timedelta(microseconds=n),  # keeps the order
                "updated_at": stamp,
            }
            for n, column in enumerate(wanted)
        ],
    )
    _register_fields(conn, schema, mapping, added)
    if live and added:
        queue_job(
            conn,
            entity,
            added,
            modified_since=modified_since,
            modified_until=modified_until,
        )
    # B14: saving clears the missing and type-changed states, and with them their notices
    for kind in ("field_missing", "field_type_changed"):
        conn.execute(
            update(notifications)
            .where(
                notifications.c.kind == kind,
                notifications.c.dedupe_key.like(f"{kind}:{entity}:%"),
                notifications.c.read_at.is_(None),
            )
            .values(read_at=stamp)
        )
    changes = [SelectionChange(c, was.get(c), after.get(c)) for c in dict.fromkeys([*was, *after])]
    audit_changes(conn, entity, changes, actor)
    ruled = tuple(c for c in wanted if c in was and was[c].rule != after[c].rule)
    return SavedSelection(
        entity, tuple(added), tuple(removed), live and bool(added), mapping, ruled
    )


def _refuse_busy(conn: Connection, entity: str, removing: Sequence[str]) -> None:
    """B12: a column a queued or running quick sync fills cannot be deselected yet."""
    busy = busy_columns(conn, entity)
    refused = [c for c in removing if c in busy]
    if not refused:
        return
    job = busy[refused[0]]
    total = f" of {job.records_total}" if job.records_total is not None else ""
    raise InvalidValueError(
        f"{entity}: {', '.join(refused)} cannot be deselected while its quick sync is "
        f"{job.state} ({job.records_done}{total} records done); deselect it once the quick "
        "sync has finished (crmsync fields quick-sync status)",
        entity=entity,
    )


def _parse_adds(add: Sequence[str]) -> dict[str, str | None]:
    """``COL`` / ``COL=FIELD`` entries: column → the existing field it maps onto, if any."""
    result: dict[str, str | None] = {}
    for entry in add:
        if entry.strip():
            column, field = parse_column(entry)
            result[column] = field or result.get(column)
    return result


def _parse_rules(
    entity: str, rules: Mapping[str, FieldRule | str], wanted: Sequence[str]
) -> dict[str, FieldRule]:
    parsed = {
        column.strip().lower(): rule if isinstance(rule, FieldRule) else FieldRule.parse(rule)
        for column, rule in rules.items()
    }
    unselected = [c for c in parsed if c not in wanted]
    if unselected:
        raise InvalidValueError(
            f"{entity}: {', '.join(unselected)} is not selected; select a column (--add) "
            "before giving it a sync rule",
            entity=entity,
        )
    return parsed


def _catalog_of(conn: Connection, entity: str) -> FieldCatalog | None:
    object_type = CATALOG_OBJECT.get(entity)
    return load_catalog(conn, object_type) if object_type is not None else None


def _existing_field(
    entity: str, attr: AttributeSchema, catalog: FieldCatalog | None, wanted: str | None
) -> str | None:
    if wanted is None:
        return None
    if catalog is None:
        raise InvalidValueError(
            f"{entity} columns cannot be mapped onto existing marketing fields; only lead, "
            "contact, account and opportunity columns can (select the column without =FIELD)",
            entity=entity,
        )
    return check_existing_field(entity, attr, catalog.get(wanted), wanted)


def _effective(
    schema: EntitySchema, choices: Mapping[str, ColumnChoice]
) -> dict[str, ColumnChoice]:
    """``choices`` with the marketing field each column actually maps to."""
    mapping = mapping_for_selection(schema, list(choices.values()))
    return {
        c: ColumnChoice(c, _field_of(mapping, c) or choice.field, choice.rule)
        for c, choice in choices.items()
    }


def _names(columns: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(c.strip().lower() for c in columns if c.strip()))


def _current(schema: EntitySchema, stored: dict[str, str]) -> list[str]:
    """The columns in effect: the stored selection (missing ones included, to show them), or
    the default mapping's when nothing was ever saved."""
    if stored:
        return [c for c in stored if c in schema.attributes]
    return list(default_mapping(schema).field_attributes)


def _field_of(mapping: EntityMapping, column: str) -> str | None:
    return next((m.field for m in mapping.fields if m.attribute == column), None)


def _register_fields(
    conn: Connection, schema: EntitySchema, mapping: EntityMapping, added: Sequence[str]
) -> None:
    """B11: give each newly selected column without a marketing field one in the catalog."""
    object_type = CATALOG_OBJECT.get(schema.logical_name)
    if object_type is None:
        return
    catalog = load_catalog(conn, object_type)
    for field_mapping in mapping.fields:
        if field_mapping.attribute not in added or catalog.get(field_mapping.field) is not None:
            continue
        attr = schema.attributes[field_mapping.attribute]
        data_type = column_data_type(attr)
        length = (attr.max_length or 255) if data_type == "string" else None
        add_local_field(
            conn,
            object_type,
            field_mapping.field,
            _display(attr),
            data_type,
            length,
            origin="crm",
        )


def _display(attr: AttributeSchema) -> str:
    return attr.display_name.strip() or attr.logical_name
