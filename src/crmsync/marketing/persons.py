"""Persons: bulk create/update/delete with change capture, and fast reads.

Every accepted change is written in **one transaction** together with its activities (New
Lead 12, Change Data Value 13, Delete Lead 37; :mod:`~crmsync.marketing.activity_log`) and
its sync outbox entry (B18; :mod:`~crmsync.store.outbox`); a skipped
record writes nothing, and an update that changes nothing writes nothing. Each call costs one
lookup query plus one ``executemany`` per table, whatever the number of records.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from crmsync.errors import InvalidValueError, UnknownFieldError
from crmsync.marketing.activity_log import delete_lead, write_activities
from crmsync.marketing.fields import FieldCatalog, FieldDef, load_catalog
from crmsync.marketing.outcomes import (
    FIELD_NOT_SUPPORTED,
    INVALID_DATA,
    LEAD_NOT_FOUND,
    Reason,
    RecordOutcome,
    skipped,
)
from crmsync.marketing.sync_leads import ACTIONS, SyncLeads, normalise_email
from crmsync.marketing.values import MAX_ID, storable_ids, unstorable_reason, utc_now_text
from crmsync.store import outbox
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import persons

__all__ = [
    "ACTIONS",
    "DEFAULT_FIELDS",
    "PersonService",
    "Reason",
    "RecordOutcome",
    "normalise_email",
]

DEFAULT_FIELDS: tuple[str, ...] = ("id", "email", "firstName", "lastName", "updatedAt", "createdAt")
MAX_BATCH_SIZE = 300
MAX_MATCHES = 1000  # more matches than this: 1003 "Too many results" (spec marketo-rest §4.4)
# Standard fields usable as a lookup / filter key besides custom string, email and integer
# fields (spec marketo-rest §4.4); other standard fields give 1011.
KEY_FIELDS = frozenset(
    {"id", "email", "crmLeadId", "crmContactId", "externalCompanyId", "externalSalesPersonId"}
)
FILTER_ONLY_FIELDS = frozenset({"leadPartitionId"})
_KEY_TYPES = frozenset({"string", "email", "integer"})


def encode_position(last_id: int) -> str:
    """A position-based ``nextPageToken`` (spec marketo-rest §1.2): resume after ``last_id``."""
    return base64.urlsafe_b64encode(f"p:{last_id}".encode()).decode("ascii").rstrip("=")


def decode_position(token: str) -> int:
    """The id a position token resumes after; raise :class:`InvalidValueError` (1003)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not text.startswith("p:"):
            raise ValueError(text)
        return int(text[2:])
    except (binascii.Error, ValueError, UnicodeError):
        raise InvalidValueError(f"Invalid nextPageToken '{token[:60]}'", code="1003") from None


class PersonService:
    """Create, update, read and delete persons (the REST API's leads)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- reads ----------------------------------------------------------------------------

    def resolve_fields(self, catalog: FieldCatalog, fields: Sequence[str] | None) -> list[FieldDef]:
        """The catalog fields named in ``fields`` (default :data:`DEFAULT_FIELDS`), deduplicated;
        raise :class:`UnknownFieldError` (1006) for an unknown name."""
        names = fields if fields else DEFAULT_FIELDS
        resolved: list[FieldDef] = []
        seen: set[str] = set()
        for name in names:
            name = name.strip()
            if not name:
                continue
            found = catalog.get(name)
            if found is None:
                raise UnknownFieldError(f"Field '{name}' not found", entity="person", code="1006")
            if found.rest_name not in seen:
                seen.add(found.rest_name)
                resolved.append(found)
        return resolved

    def read_rows(
        self,
        conn: Connection,
        wanted: list[FieldDef],
        condition: ColumnElement[bool],
        limit: int | None = None,
    ) -> list[dict[str, object]]:
        """Persons matching ``condition`` in id order, as dicts of ``wanted`` plus ``id``."""
        columns: list[ColumnElement[Any]] = [persons.c.id]
        columns += [
            persons.c[f.rest_name].label(f.rest_name)
            for f in wanted
            if not f.is_custom and f.rest_name != "id"
        ]
        custom_wanted = [f.rest_name for f in wanted if f.is_custom]
        if custom_wanted:
            columns.append(persons.c.custom)
        query = select(*columns).where(condition).order_by(persons.c.id)
        if limit is not None:
            query = query.limit(limit)
        result: list[dict[str, object]] = []
        for row in conn.execute(query).mappings():
            custom = (row["custom"] or {}) if custom_wanted else {}
            item: dict[str, object] = {}
            for f in wanted:
                name = f.rest_name
                item[name] = custom.get(name) if f.is_custom else row[name]
            item["id"] = row["id"]
            result.append(item)
        return result

    def get_by_ids(
        self, ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> list[dict[str, object]]:
        """Persons by id, in the order asked, unknown ids left out. Each dict has ``id`` plus
        the requested fields (default: id, email, firstName, lastName, updatedAt, createdAt);
        null values are present as ``None``. Raises :class:`UnknownFieldError`."""
        with self._engine.connect() as conn:
            wanted = self.resolve_fields(load_catalog(conn), fields)
            wanted_ids = storable_ids(int(i) for i in ids)
            if not wanted_ids:
                return []
            found = self.read_rows(conn, wanted, persons.c.id.in_(wanted_ids))
        by_id = {item["id"]: item for item in found}
        return [by_id[i] for i in wanted_ids if i in by_id]

    def _key_column(self, field: FieldDef, purpose: str) -> ColumnElement[Any]:
        allowed = KEY_FIELDS | (FILTER_ONLY_FIELDS if purpose == "filter" else frozenset())
        if field.is_custom:
            if field.data_type not in _KEY_TYPES:
                raise InvalidValueError(
                    f"Field '{field.rest_name}' not supported",
                    entity="person",
                    code=FIELD_NOT_SUPPORTED,
                )
            element = persons.c.custom[field.rest_name]
            typed: ColumnElement[Any] = (
                element.as_integer() if field.data_type == "integer" else element.as_string()
            )
            return typed
        if field.rest_name not in allowed:
            raise InvalidValueError(
                f"Field '{field.rest_name}' not supported",
                entity="person",
                code=FIELD_NOT_SUPPORTED,
            )
        if field.rest_name == "email":
            return persons.c.email_key
        return persons.c[field.rest_name]

    @staticmethod
    def _key_value(field: FieldDef, raw: object) -> object:
        """The lookup key for a filter value; ``None`` when no stored row can match it."""
        text = str(raw)
        if unstorable_reason(text) is not None:  # never stored, so nothing can match
            return None
        if field.data_type == "email":
            return normalise_email(text)
        if field.data_type == "integer":
            try:
                number = int(text.strip())
            except ValueError:
                raise InvalidValueError(
                    f"Invalid value '{raw}' for '{field.rest_name}'", code=INVALID_DATA
                ) from None
            return number if -MAX_ID <= number <= MAX_ID else None
        return text

    def find(
        self,
        filter_field: str,
        values: Sequence[str],
        fields: Sequence[str] | None = None,
        batch_size: int = 300,
        next_page_token: str | None = None,
    ) -> tuple[list[dict[str, object]], str | None]:
        """Persons whose ``filter_field`` equals one of ``values`` (email: any case), by id.

        Returns the page and a ``nextPageToken`` when more remain. Raises
        :class:`UnknownFieldError` (1006) or :class:`InvalidValueError` (1011 unsupported
        filter, 1003 bad value or token, or more than 1,000 matches).
        """
        size = max(1, min(int(batch_size), MAX_BATCH_SIZE))
        after = decode_position(next_page_token) if next_page_token else 0
        with self._engine.connect() as conn:
            catalog = load_catalog(conn)
            field = catalog.get(filter_field.strip())
            if field is None:
                raise UnknownFieldError(
                    f"Field '{filter_field}' not found", entity="person", code="1006"
                )
            column = self._key_column(field, "filter")
            keys = list(
                dict.fromkeys(
                    k
                    for k in (self._key_value(field, v) for v in values if str(v).strip())
                    if k is not None
                )
            )
            wanted = self.resolve_fields(catalog, fields)
            if not keys:
                return [], None
            condition = column.in_(keys) & (persons.c.id > after)
            found = self.read_rows(conn, wanted, condition, limit=size + 1)
            if len(found) > size and next_page_token is None:
                matching = select(persons.c.id).where(column.in_(keys)).limit(MAX_MATCHES + 1)
                total = conn.execute(
                    select(func.count()).select_from(matching.subquery())
                ).scalar_one()
                if total > MAX_MATCHES:
                    raise InvalidValueError(
                        "Too many results match the filter", entity="person", code=INVALID_DATA
                    )
        if len(found) > size:
            found = found[:size]
            last = found[-1]["id"]
            assert isinstance(last, int)
            return found, encode_position(last)
        return found, None

    # ---- writes ---------------------------------------------------------------------------

    def sync(
        self,
        records: Sequence[Mapping[str, object]],
        *,
        action: str = "createOrUpdate",
        lookup_field: str = "email",
        source: str = "Web service API",
        allow_system_fields: bool = False,
        write_outbox: bool = True,
    ) -> list[RecordOutcome]:
        """Create and/or update persons (spec marketo-rest §4.5); one outcome per record.

        ``allow_system_fields`` lets the sync engine write the read-only CRM fields (B7);
        ``write_outbox=False`` is for changes that come *from* Dynamics, which must not be sent
        back (echo suppression, B19); their activities are still written.
        Raises :class:`InvalidValueError` for an unknown action, :class:`UnknownFieldError`
        (1006) / :class:`InvalidValueError` (1011) for a bad lookup field.
        """
        if action not in ACTIONS:
            raise InvalidValueError(
                f"Invalid action '{action}'; use one of {', '.join(sorted(ACTIONS))}",
                code=INVALID_DATA,
            )
        with self._engine.begin() as conn:
            take_write_lock(conn)
            catalog = load_catalog(conn)
            lookup = catalog.get(lookup_field.strip())
            if lookup is None:
                raise UnknownFieldError(
                    f"Field '{lookup_field}' not found", entity="person", code="1006"
                )
            key_column = self._key_column(lookup, "lookup")
            run = SyncLeads(lookup, key_column, source, utc_now_text(), write_outbox)
            return run.apply(conn, catalog, records, action, allow_system_fields)

    def delete(self, ids: Sequence[int], *, source: str = "Web service API") -> list[RecordOutcome]:
        """Delete persons here only, never in Dynamics (B27, B35); unknown ids give 1004.

        Each deletion writes a Delete Lead activity (37, kept for deleted leads) and a
        ``delete`` outbox entry so the sync engine learns the link is gone, in one transaction.
        """
        wanted = [int(i) for i in ids]
        now = utc_now_text()
        outcomes: list[RecordOutcome] = []
        with self._engine.begin() as conn:
            take_write_lock(conn)
            found = (
                {
                    row.id: row
                    for row in conn.execute(
                        select(
                            persons.c.id, persons.c.firstName, persons.c.lastName, persons.c.email
                        )
                        .where(persons.c.id.in_(storable_ids(wanted)))
                        .with_for_update()
                    )
                }
                if wanted
                else {}
            )
            deleted: list[int] = []
            for person_id in wanted:
                if person_id in found and person_id not in deleted:
                    deleted.append(person_id)
                    outcomes.append(RecordOutcome("deleted", person_id))
                else:
                    outcomes.append(skipped(LEAD_NOT_FOUND, "Lead not found", person_id))
            if not deleted:
                return outcomes
            conn.execute(delete(persons).where(persons.c.id.in_(deleted)))
            outbox.enqueue(conn, deleted, operation="delete", source=source)
            names = {
                person_id: " ".join(p for p in (row.firstName, row.lastName) if p)
                or row.email
                or ""
                for person_id, row in found.items()
            }
            # activities last in the transaction (see crmsync.marketing.activity_log)
            write_activities(
                conn,
                [
                    delete_lead(person_id, name=names[person_id], source=source, when=now)
                    for person_id in deleted
                ],
            )
        return outcomes
