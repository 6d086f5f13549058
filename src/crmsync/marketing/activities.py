"""The activity log's read side: typed activities per person, in Marketo's JSON shapes.

Activities are written by :mod:`crmsync.marketing.activity_log` (one builder per type, one
insert path); this module reads them back.

Reads page with date-based tokens (spec marketo-rest §1.2, §5.2): a token is base32 of
``"<since>,<last activity id>"``; a page holds the activities with a larger id, in id order,
which is time order because activities are only ever appended with the current time. Paging by
id loses nothing because ids follow commit order: SQLite has one writer at a time, and on
PostgreSQL every insert into ``activities`` first takes a transaction-level advisory lock
(a trigger, migration ``0003_activity_commit_order``), so a later id never commits first.
Writers therefore insert activities last in their transaction
(:func:`~crmsync.marketing.activity_log.write_activities`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import ColumnElement

from crmsync.errors import InvalidValueError
from crmsync.marketing.activity_log import activity, write_activities
from crmsync.marketing.activity_types import (
    ACTIVITY_TYPES,
    CHANGE_DATA_VALUE,
    DELETE_LEAD,
    NEW_LEAD,
)
from crmsync.marketing.fields import load_catalog
from crmsync.marketing.values import format_datetime, storable_ids
from crmsync.store.tables import activities, list_members

__all__ = [
    "ACTIVITY_TYPES",
    "ActivityPage",
    "ActivityService",
    "InvalidPagingTokenError",
    "decode_paging_token",
    "encode_paging_token",
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
    """Reads the activity log (and records single activities for callers holding a
    transaction)."""

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

        As with :func:`~crmsync.marketing.activity_log.write_activities`, record activities
        last in the transaction. Raises :class:`InvalidValueError` for an unknown type.
        """
        entry = activity(
            person_id,
            type_id,
            primary_value,
            attributes,
            campaign_id=campaign_id,
            primary_value_id=primary_value_id,
            field_name=field_name,
            when=format_datetime(activity_date) if activity_date else None,
        )
        write_activities(conn, [entry])

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
