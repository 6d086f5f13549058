"""Static lists and their members (spec marketo-rest §6.4, §4.12).

Adding and removing members writes Add to List (24) / Remove from List (25) activities in the
same transaction; adding a person already in the list changes nothing and reports ``added``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from crmsync.errors import InvalidValueError, RecordNotFoundError
from crmsync.marketing.activity_log import ActivityEntry, list_membership, write_activities
from crmsync.marketing.campaigns.triggers import record_trigger_events
from crmsync.marketing.fields import load_catalog
from crmsync.marketing.outcomes import (
    INVALID_DATA,
    LEAD_NOT_FOUND,
    LEAD_NOT_IN_LIST,
    OBJECT_NOT_FOUND,
    RecordOutcome,
    skipped,
)
from crmsync.marketing.persons import (
    MAX_BATCH_SIZE,
    PersonService,
    decode_position,
    encode_position,
)
from crmsync.marketing.values import storable_ids, unstorable_reason, utc_now_text
from crmsync.store.locks import take_write_lock
from crmsync.store.tables import list_members, persons, static_lists

OBJECT_EXISTS = "1017"


def _list_item(row: RowMapping) -> dict[str, object]:
    item: dict[str, object] = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "workspaceName": row["workspace_name"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }
    if row["program_name"]:
        item["programName"] = row["program_name"]
    return item


class ListService:
    """Create and query static lists; add, remove and check members."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._persons = PersonService(engine)

    def create(self, name: str, description: str = "", program_name: str | None = None) -> int:
        """Create a list and return its id; a name already in use raises (1017)."""
        name = name.strip()
        if not name:
            raise InvalidValueError("name cannot be blank", code="701")
        for label, text in (("name", name), ("description", description)):
            unstorable = unstorable_reason(text)
            if unstorable is not None:
                raise InvalidValueError(f"Invalid {label}: it {unstorable}", code=INVALID_DATA)
        if program_name is not None and unstorable_reason(program_name) is not None:
            raise InvalidValueError("Invalid programName", code=INVALID_DATA)
        now = utc_now_text()
        try:
            with self._engine.begin() as conn:
                new_id: int = conn.execute(
                    insert(static_lists)
                    .values(
                        name=name,
                        description=description,
                        program_name=program_name,
                        workspace_name="Default",
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(static_lists.c.id)
                ).scalar_one()
        except IntegrityError as exc:
            raise InvalidValueError(
                f"a list named {name!r} already exists", code=OBJECT_EXISTS
            ) from exc
        return new_id

    def get(self, list_id: int) -> dict[str, object] | None:
        """The list as Marketo shows it, or ``None``."""
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(static_lists).where(static_lists.c.id == int(list_id)))
                .mappings()
                .first()
            )
        return _list_item(row) if row else None

    def query(
        self,
        ids: Sequence[int] | None = None,
        names: Sequence[str] | None = None,
        batch_size: int = 300,
        next_page_token: str | None = None,
    ) -> tuple[list[dict[str, object]], str | None]:
        """Lists filtered by ids and/or names (all when neither), by id, paged."""
        size = max(1, min(int(batch_size), MAX_BATCH_SIZE))
        after = decode_position(next_page_token) if next_page_token else 0
        query = select(static_lists).where(static_lists.c.id > after)
        if ids:
            query = query.where(static_lists.c.id.in_(storable_ids(int(i) for i in ids)))
        if names:
            storable = [name for name in names if unstorable_reason(name) is None]
            if not storable:  # no stored list can bear any of these names
                return [], None
            query = query.where(static_lists.c.name.in_(storable))
        with self._engine.connect() as conn:
            rows = list(conn.execute(query.order_by(static_lists.c.id).limit(size + 1)).mappings())
        items = [_list_item(row) for row in rows[:size]]
        token = encode_position(rows[size - 1]["id"]) if len(rows) > size else None
        return items, token

    @staticmethod
    def _require_list(conn: Connection, list_id: int, *, for_update: bool = False) -> str:
        query = select(static_lists.c.name).where(static_lists.c.id == int(list_id))
        if for_update:  # membership changes of one list run one after another
            take_write_lock(conn)
            query = query.with_for_update()
        name = conn.execute(query).scalar()
        if name is None:
            raise RecordNotFoundError(
                f"List {list_id} not found",
                entity="list",
                record_id=str(list_id),
                code=OBJECT_NOT_FOUND,
            )
        return str(name)

    def _membership(
        self, conn: Connection, list_id: int, wanted: list[int], *, for_update: bool = False
    ) -> tuple[str, set[int], set[int]]:
        """The list's name (locked ``for_update``), which ``wanted`` persons exist, which belong."""
        name = self._require_list(conn, list_id, for_update=for_update)
        known = self._existing_persons(conn, wanted)
        return name, known, self._current_members(conn, list_id, wanted)

    @staticmethod
    def _existing_persons(conn: Connection, ids: list[int]) -> set[int]:
        if not ids:
            return set()
        return set(
            conn.execute(select(persons.c.id).where(persons.c.id.in_(storable_ids(ids)))).scalars()
        )

    @staticmethod
    def _current_members(conn: Connection, list_id: int, ids: list[int]) -> set[int]:
        if not ids:
            return set()
        return set(
            conn.execute(
                select(list_members.c.person_id).where(
                    list_members.c.list_id == int(list_id),
                    list_members.c.person_id.in_(storable_ids(ids)),
                )
            ).scalars()
        )

    @staticmethod
    def _activity_rows(
        added: bool, list_id: int, name: str, person_ids: list[int], source: str, now: str
    ) -> list[ActivityEntry]:
        return [
            list_membership(
                person_id, added=added, list_id=list_id, list_name=name, source=source, when=now
            )
            for person_id in person_ids
        ]

    def add_members(
        self, list_id: int, person_ids: Sequence[int], *, source: str = "Web service API"
    ) -> list[RecordOutcome]:
        """Add persons: ``added`` (also when already a member) or skipped 1004 (unknown)."""
        wanted = [int(i) for i in person_ids]
        now = utc_now_text()
        with self._engine.begin() as conn:
            name, known, already = self._membership(conn, list_id, wanted, for_update=True)
            outcomes: list[RecordOutcome] = []
            new: list[int] = []
            for person_id in wanted:
                if person_id not in known:
                    outcomes.append(skipped(LEAD_NOT_FOUND, "Lead not found", person_id))
                    continue
                if person_id not in already and person_id not in new:
                    new.append(person_id)
                outcomes.append(RecordOutcome("added", person_id))
            if new:
                conn.execute(
                    insert(list_members),
                    [{"list_id": int(list_id), "person_id": p, "added_at": now} for p in new],
                )
                rows = self._activity_rows(True, list_id, name, new, source, now)
                write_activities(conn, rows)
                record_trigger_events(conn, rows)
        return outcomes

    def remove_members(
        self, list_id: int, person_ids: Sequence[int], *, source: str = "Web service API"
    ) -> list[RecordOutcome]:
        """Remove persons: ``removed``, or skipped 1004 (unknown) / 1015 (not in the list)."""
        wanted = [int(i) for i in person_ids]
        now = utc_now_text()
        with self._engine.begin() as conn:
            name, known, members = self._membership(conn, list_id, wanted, for_update=True)
            outcomes: list[RecordOutcome] = []
            gone: list[int] = []
            for person_id in wanted:
                if person_id not in known:
                    outcomes.append(skipped(LEAD_NOT_FOUND, "Lead not found", person_id))
                elif person_id not in members or person_id in gone:
                    outcomes.append(skipped(LEAD_NOT_IN_LIST, "Lead not in list", person_id))
                else:
                    gone.append(person_id)
                    outcomes.append(RecordOutcome("removed", person_id))
            if gone:
                conn.execute(
                    delete(list_members).where(
                        list_members.c.list_id == int(list_id),
                        list_members.c.person_id.in_(gone),
                    )
                )
                rows = self._activity_rows(False, list_id, name, gone, source, now)
                write_activities(conn, rows)
                record_trigger_events(conn, rows)
        return outcomes

    def is_member(self, list_id: int, person_ids: Sequence[int]) -> list[RecordOutcome]:
        """``memberof`` / ``notmemberof`` per person, or skipped 1004 for an unknown id."""
        wanted = [int(i) for i in person_ids]
        with self._engine.connect() as conn:
            _, known, members = self._membership(conn, list_id, wanted)
        outcomes: list[RecordOutcome] = []
        for person_id in wanted:
            if person_id not in known:
                outcomes.append(skipped(LEAD_NOT_FOUND, "Lead not found", person_id))
            elif person_id in members:
                outcomes.append(RecordOutcome("memberof", person_id))
            else:
                outcomes.append(RecordOutcome("notmemberof", person_id))
        return outcomes

    def members(
        self,
        list_id: int,
        fields: Sequence[str] | None = None,
        batch_size: int = 300,
        next_page_token: str | None = None,
    ) -> tuple[list[dict[str, object]], str | None]:
        """The list's persons by id (spec §4.12), with a token while more pages remain."""
        size = max(1, min(int(batch_size), MAX_BATCH_SIZE))
        after = decode_position(next_page_token) if next_page_token else 0
        with self._engine.connect() as conn:
            self._require_list(conn, list_id)
            wanted = self._persons.resolve_fields(load_catalog(conn), fields)
            in_list = select(list_members.c.person_id).where(list_members.c.list_id == int(list_id))
            found = self._persons.read_rows(
                conn, wanted, persons.c.id.in_(in_list) & (persons.c.id > after), limit=size + 1
            )
        if len(found) > size:
            found = found[:size]
            last = found[-1]["id"]
            assert isinstance(last, int)
            return found, encode_position(last)
        return found, None
