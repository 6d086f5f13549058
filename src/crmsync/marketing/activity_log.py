"""The activity log's write side: one builder per activity type, and the one insert path.

Every activity row crmsync writes is built here (:class:`ActivityEntry`) and inserted by
:func:`write_activities`, whichever feature writes it: the REST API's person and list
changes, the sync engine (records from Dynamics, collisions, failures in either direction)
and campaign flow steps (:func:`activity`, any type with a campaign). The read side is
:mod:`crmsync.marketing.activities`.

**Commit order.** Readers page activities by id (spec marketo-rest §1.2), which is safe only
if ids follow commit order. SQLite has one writer at a time; on PostgreSQL every insert into
``activities`` first takes a transaction-level advisory lock (a trigger, migration
``0003_activity_commit_order``), so a transaction writing activities waits for the others
that write them and makes later ones wait until it ends. Write activities therefore **last**
in a transaction, after every row lock it needs, so the lock is held as briefly as possible
and no other lock is awaited while holding it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from crmsync.errors import InvalidValueError
from crmsync.marketing.activity_types import (
    ACTIVITY_TYPES_BY_ID,
    ADD_TO_LIST,
    CHANGE_DATA_VALUE,
    DELETE_LEAD,
    DELETE_LEAD_FROM_MICROSOFT,
    NEW_LEAD,
    REMOVE_FROM_LIST,
    SYNC_COLLISION,
    SYNC_ERROR,
)
from crmsync.marketing.fields import FieldDef
from crmsync.marketing.values import utc_now_text
from crmsync.store.tables import activities

CUSTOM_TYPES_FROM = 100_000
"""Ids from here on are custom activity types, which need no definition here."""


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    """One activity-log row about to be written.

    ``activity_date`` is wire-format UTC text (:func:`~crmsync.marketing.values.utc_now_text`);
    ``attributes`` a JSON-able mapping of the type's attributes.
    """

    person_id: int
    type_id: int
    activity_date: str
    primary_value: str | None
    attributes: Mapping[str, object]
    primary_value_id: int | None = None
    field_name: str | None = None
    campaign_id: int | None = None


def activity(
    person_id: int,
    type_id: int,
    primary_value: str | None,
    attributes: Mapping[str, object],
    *,
    campaign_id: int | None = None,
    primary_value_id: int | None = None,
    field_name: str | None = None,
    when: str | None = None,
) -> ActivityEntry:
    """An activity of any known (or custom) type, e.g. for a campaign's flow step.

    Raises :class:`InvalidValueError` for a type crmsync does not define below the custom
    range.
    """
    if type_id not in ACTIVITY_TYPES_BY_ID and type_id < CUSTOM_TYPES_FROM:
        raise InvalidValueError(f"unknown activity type {type_id}")
    return ActivityEntry(
        person_id,
        type_id,
        when or utc_now_text(),
        primary_value,
        dict(attributes),
        primary_value_id,
        field_name,
        campaign_id,
    )


def new_lead(person_id: int, *, source: str, lead_source: object, when: str) -> ActivityEntry:
    """New Lead (12): the person was created by ``source``."""
    return ActivityEntry(
        person_id,
        NEW_LEAD,
        when,
        source,
        {"Created Date": when[:10], "Source Type": source, "Lead Source": lead_source},
        primary_value_id=person_id,
    )


def change_data_value(
    person_id: int,
    name: str,
    old: object,
    new: object,
    *,
    field: FieldDef | None,
    reason: str,
    source: str,
    when: str,
) -> ActivityEntry:
    """Change Data Value (13): field ``name`` went from ``old`` to ``new``. With the field's
    catalog entry, the activity names it by display name and id, as Marketo does."""
    return ActivityEntry(
        person_id,
        CHANGE_DATA_VALUE,
        when,
        field.display_name if field is not None else name,
        {"New Value": new, "Old Value": old, "Reason": reason, "Source": source},
        primary_value_id=field.field_id if field is not None else None,
        field_name=name,
    )


def delete_lead(person_id: int, *, name: str, source: str, when: str) -> ActivityEntry:
    """Delete Lead (37): the person (``name``, its full name or e-mail) was deleted here."""
    return ActivityEntry(
        person_id, DELETE_LEAD, when, name, {"Source": source}, primary_value_id=person_id
    )


def list_membership(
    person_id: int, *, added: bool, list_id: int, list_name: str, source: str, when: str
) -> ActivityEntry:
    """Add to List (24) or Remove from List (25) of static list ``list_id``."""
    return ActivityEntry(
        person_id,
        ADD_TO_LIST if added else REMOVE_FROM_LIST,
        when,
        list_name,
        {"Source": source},
        primary_value_id=int(list_id),
    )


def delete_lead_from_microsoft(
    person_id: int, *, entity: str, crm_id: str, when: str
) -> ActivityEntry:
    """Delete Lead from Microsoft (506): the person's Dynamics record was deleted (B26)."""
    return ActivityEntry(
        person_id,
        DELETE_LEAD_FROM_MICROSOFT,
        when,
        crm_id,
        {"Entity": entity, "CRM Id": crm_id},
        primary_value_id=person_id,
    )


def sync_collision(
    person_id: int, field_name: str, record: Mapping[str, object], *, when: str
) -> ActivityEntry:
    """Sync Collision (501): both sides changed ``field_name``; ``record`` holds the values,
    the winner, the rule and a description (B24)."""
    return ActivityEntry(
        person_id, SYNC_COLLISION, when, field_name, dict(record), field_name=field_name
    )


def sync_error(
    person_id: int,
    *,
    entity: str,
    crm_id: str | None,
    direction: str,
    code: str | None,
    message: str,
    when: str,
) -> ActivityEntry:
    """Sync Error (500): the person's record failed to sync in ``direction`` (``to_crm`` or
    ``to_marketing``) with Dynamics' ``code`` and ``message`` (B37)."""
    return ActivityEntry(
        person_id,
        SYNC_ERROR,
        when,
        "update" if direction == "to_crm" else "read",
        {
            "Direction": direction,
            "Error Code": code,
            "Message": message,
            "Entity": entity,
            "CRM Id": crm_id,
        },
    )


_COLUMNS = (
    "person_id",
    "type_id",
    "activity_date",
    "primary_value_id",
    "primary_value",
    "field_name",
    "attributes",
    "campaign_id",
)


def _insert_statement(conn: Connection) -> str:
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.paramstyle == "qmark":
        mark, json_mark = "?", "?"
    else:
        mark, json_mark = "%s", "CAST(%s AS JSON)"
    marks = ", ".join(json_mark if name == "attributes" else mark for name in _COLUMNS)
    columns = ", ".join(quote(activities.c[name].name) for name in _COLUMNS)
    # identifiers come from the table definition, values are bound parameters
    return f"INSERT INTO {quote(activities.name)} ({columns}) VALUES ({marks})"  # noqa: S608


def _attributes_serialiser(conn: Connection) -> Callable[[object], str]:
    """The engine's JSON serialiser (orjson), as for every other JSON column; a value it cannot
    write (an integer past 64 bits) goes through the standard module instead."""
    fast: Callable[[object], str] | None = getattr(conn.dialect, "_json_serializer", None)
    if fast is None:
        return json.dumps

    def dumps(value: object) -> str:
        try:
            return fast(value)
        except TypeError:
            return json.dumps(value)

    return dumps


def write_activities(conn: Connection, entries: Sequence[ActivityEntry]) -> None:
    """Insert ``entries`` in the caller's transaction: the one way activities are written.

    One DBAPI ``executemany`` with the attributes serialised once: this is the hot path of
    every bulk person change and of the initial sync. Call it as the **last** step of the
    transaction (see the module docstring: on PostgreSQL it waits for, and then holds up,
    every other transaction writing activities).
    """
    if not entries:
        return
    dumps = _attributes_serialiser(conn)
    params = [
        (
            entry.person_id,
            entry.type_id,
            entry.activity_date,
            entry.primary_value_id,
            entry.primary_value,
            entry.field_name,
            dumps(entry.attributes or {}),
            entry.campaign_id,
        )
        for entry in entries
    ]
    conn.exec_driver_sql(_insert_statement(conn), params)
