"""The activity log: typed activities per person, read back in Marketo's JSON shapes.

Reads page with date-based tokens (spec marketo-rest §1.2, §5.2): a token is base32 of
``"<since>,<last activity id>"``; a page holds the activities with a larger id, in id order,
which is time order because activities are only ever appended with the current time. Paging by
id loses nothing because ids follow commit order: SQLite has one writer at a time, and on
PostgreSQL every insert into ``activities`` first takes a transaction-level advisory lock
(a trigger, migration ``0003_activity_commit_order``), so a later id never commits first.
Writers therefore insert activities last in their transaction.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import ColumnElement

from crmsync.errors import InvalidValueError
from crmsync.marketing.activity_types import (
    ACTIVITY_TYPES,
    ACTIVITY_TYPES_BY_ID,
    CHANGE_DATA_VALUE,
    DELETE_LEAD,
    NEW_LEAD,
)
from crmsync.marketing.fields import load_catalog
from crmsync.marketing.values import format_datetime, storable_ids, utc_now_text
from crmsync.store.tables import activities, list_members

__all__ = [
    "ACTIVITY_TYPES",
    "ActivityPage",
    "ActivityService",
    "InvalidPagingTokenError",
    "decode_paging_token",
    "encode_paging_token",
    "insert_activities",
]

MAX_BATCH_SIZE = 300
_LEAD_CHANGE_HIDDEN = frozenset({"New Value", "Old Value", "Attribute Name"})


class InvalidPagingTokenError(InvalidValueError):
    """A ``nextPageToken`` that crmsync did not issue."""


@dataclass(frozen=True, slots=True)
class ActivityPage:
    """One page of activities, already in Marketo's JSON shapes (spec marketo-rest §5.3–5.5)."""

    items: list[dict[str, object]]
    next_page_token: str
    more_result: bool


def encode_paging_token(since: str, last_id: int) -> str:
    """An opaque token meaning "activities after ``last_id``" (``since`` kept for display)."""
    return base64.b32encode(f"{since},{last_id}".encode()).decode("ascii")


def decode_paging_token(token: str) -> int:
    """The last activity id a token stands for; raise :class:`InvalidPagingTokenError`."""
    try:
        text = base64.b32decode(token.strip().upper(), casefold=True).decode("ascii")
        _since, last = text.rsplit(",", 1)
        last_id = int(last)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidPagingTokenError(f"Invalid nextPageToken '{token[:60]}'") from None
    if last_id < 0:
        raise InvalidPagingTokenError(f"Invalid nextPageToken '{token[:60]}'")
    return last_id


_ACTIVITY_COLUMNS = (
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
    marks = ", ".join(json_mark if name == "attributes" else mark for name in _ACTIVITY_COLUMNS)
    columns = ", ".join(quote(activities.c[name].name) for name in _ACTIVITY_COLUMNS)
    # identifiers come from the table definition, values are bound parameters
    return f"INSERT INTO {quote(activities.name)} ({columns}) VALUES ({marks})"  # noqa: S608


def insert_activities(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bulk-insert activity rows in the caller's transaction.

    Keys: person_id, type_id, activity_date (wire-format text), primary_value_id,
    primary_value, field_name, attributes (a JSON-able mapping), campaign_id. One DBAPI
    ``executemany`` with the attributes serialised once: this is the hot path of every bulk
    person change. On PostgreSQL the insert waits for other transactions writing activities to
    end and makes them wait until this one ends (ids in commit order), so write activities as
    the last step of a transaction, after every row lock it needs.
    """
    if not rows:
        return
    params = [
        (
            row["person_id"],
            row["type_id"],
            row["activity_date"],
            row.get("primary_value_id"),
            row.get("primary_value"),
            row.get("field_name"),
            json.dumps(row.get("attributes") or {}),
            row.get("campaign_id"),
        )
        for row in rows
    ]
    conn.exec_driver_sql(_insert_statement(conn), params)


def _clamp(batch_size: int) -> int:
    return max(1, min(int(batch_size), MAX_BATCH_SIZE))


def _attributes(row: RowMapping, hidden: frozenset[str] = frozenset()) -> list[dict[str, object]]:
    stored: dict[str, Any] = row["attributes"] or {}
    return [
        {"name": name, "value": value}
        for name, value in stored.items()
        if name not in hidden and value is not None and value != ""
    ]


def _base_item(row: RowMapping) -> dict[str, object]:
    item: dict[str, object] = {
        "id": row["id"],
        "marketoGUID": str(row["id"]),
        "leadId": row["person_id"],
        "activityDate": row["activity_date"],
        "activityTypeId": row["type_id"],
    }
    if row["primary_value_id"] is not None:
        item["primaryAttributeValueId"] = row["primary_value_id"]
    if row["primary_value"] not in (None, ""):
        item["primaryAttributeValue"] = row["primary_value"]
    if row["campaign_id"] is not None:
        item["campaignId"] = row["campaign_id"]
    return item


class ActivityService:
    """Writes and reads the activity log."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self,
        conn: Connection,
        person_id: int,
        type_id: int,
        primary_value: str | None,
        attributes: Mapping[str, object],
        *,
        primary_value_id: int | None = None,
        field_name: str | None = None,
        campaign_id: int | None = None,
        activity_date: datetime | None = None,
    ) -> None:
        """Append one activity for ``person_id`` in the caller's transaction ``conn``.

        As with :func:`insert_activities`, record activities last in the transaction.
        """
        if type_id not in ACTIVITY_TYPES_BY_ID and type_id < 100_000:
            raise InvalidValueError(f"unknown activity type {type_id}")
        conn.execute(
            insert(activities).values(
                person_id=person_id,
                type_id=type_id,
                activity_date=(format_datetime(activity_date) if activity_date else utc_now_text()),
                primary_value_id=primary_value_id,
                primary_value=primary_value,
                field_name=field_name,
                attributes=dict(attributes),
                campaign_id=campaign_id,
            )
        )

    def paging_token(self, since: datetime) -> str:
        """A token for the activities recorded at or after ``since``."""
        since_text = format_datetime(since)
        with self._engine.connect() as conn:
            # the smallest id dated since, not the earliest-dated row: a row with a later id may
            # carry an earlier date (recorded with its own date), and pages go by id
            first = conn.execute(
                select(func.min(activities.c.id)).where(activities.c.activity_date >= since_text)
            ).scalar()
            if first is None:
                last = conn.execute(select(func.max(activities.c.id))).scalar() or 0
            else:
                last = first - 1
        return encode_paging_token(since_text, int(last))

    def _page(
        self,
        next_page_token: str,
        conditions: Sequence[ColumnElement[bool]],
        lead_ids: Sequence[int] | None,
        list_id: int | None,
        batch_size: int,
    ) -> tuple[list[RowMapping], str, bool]:
        last_id = decode_paging_token(next_page_token)
        size = _clamp(batch_size)
        query = select(activities).where(activities.c.id > last_id, *conditions)
        if lead_ids:
            query = query.where(activities.c.person_id.in_(storable_ids(int(i) for i in lead_ids)))
        if list_id is not None:
            members = select(list_members.c.person_id).where(list_members.c.list_id == list_id)
            query = query.where(activities.c.person_id.in_(members))
        with self._engine.connect() as conn:
            rows = list(conn.execute(query.order_by(activities.c.id).limit(size + 1)).mappings())
        more = len(rows) > size
        rows = rows[:size]
        new_last = rows[-1]["id"] if rows else last_id
        since = rows[-1]["activity_date"] if rows else ""
        return rows, encode_paging_token(since, new_last), more

    def list(
        self,
        next_page_token: str,
        type_ids: Sequence[int],
        lead_ids: Sequence[int] | None = None,
        list_id: int | None = None,
        batch_size: int = 300,
    ) -> ActivityPage:
        """Activities of ``type_ids`` after the token (spec marketo-rest §5.3)."""
        if not type_ids:
            raise InvalidValueError("activityTypeIds cannot be blank")
        conditions = [activities.c.type_id.in_(storable_ids(int(t) for t in type_ids))]
        rows, token, more = self._page(next_page_token, conditions, lead_ids, list_id, batch_size)
        items = []
        for row in rows:
            item = _base_item(row)
            item["attributes"] = _attributes(row)
            items.append(item)
        return ActivityPage(items, token, more)

    def lead_changes(
        self,
        next_page_token: str,
        fields: Sequence[str],
        lead_ids: Sequence[int] | None = None,
        list_id: int | None = None,
        batch_size: int = 300,
    ) -> ActivityPage:
        """New Lead and Change Data Value activities of ``fields`` (spec marketo-rest §5.4).

        Raises :class:`UnknownFieldError` for a field the person catalog does not know.
        """
        if not fields:
            raise InvalidValueError("fields cannot be blank")
        with self._engine.connect() as conn:
            catalog = load_catalog(conn, "person")
        names = [catalog.require(name).rest_name for name in fields]
        condition = (activities.c.type_id == NEW_LEAD) | (
            (activities.c.type_id == CHANGE_DATA_VALUE) & activities.c.field_name.in_(names)
        )
        rows, token, more = self._page(next_page_token, [condition], lead_ids, list_id, batch_size)
        items = []
        for row in rows:
            item = _base_item(row)
            if row["type_id"] == CHANGE_DATA_VALUE:
                stored: dict[str, Any] = row["attributes"] or {}
                item["fields"] = [
                    {
                        "id": row["primary_value_id"],
                        "name": row["field_name"],
                        "newValue": stored.get("New Value"),
                        "oldValue": stored.get("Old Value"),
                    }
                ]
                item["attributes"] = _attributes(row, _LEAD_CHANGE_HIDDEN)
            else:
                item["fields"] = []
                item["attributes"] = _attributes(row)
            items.append(item)
        return ActivityPage(items, token, more)

    def deleted_leads(self, next_page_token: str, batch_size: int = 300) -> ActivityPage:
        """Delete Lead activities after the token (spec marketo-rest §5.5)."""
        rows, token, more = self._page(
            next_page_token, [activities.c.type_id == DELETE_LEAD], None, None, batch_size
        )
        items = []
        for row in rows:
            item = _base_item(row)
            item["attributes"] = _attributes(row)
            items.append(item)
        return ActivityPage(items, token, more)
