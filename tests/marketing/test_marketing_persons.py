"""PersonService: Sync Leads semantics (spec marketo-rest §4.5), reads (§4.3, §4.4), deletes
(§4.6) and change capture in the same transaction (B18)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import RowMapping

from crmsync.errors import InvalidValueError, UnknownFieldError
from crmsync.marketing.fields import add_local_field
from crmsync.marketing.persons import PersonService, RecordOutcome
from crmsync.store.tables import activities, persons, sync_outbox


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _outbox(engine: Engine) -> list[RowMapping]:
    with engine.connect() as conn:
        return list(conn.execute(select(sync_outbox).order_by(sync_outbox.c.id)).mappings())


def _codes(outcome: RecordOutcome) -> list[str]:
    return [reason.code for reason in outcome.reasons]


def test_create_then_update_by_email_case_insensitively(migrated_engine: Engine) -> None:
    """createOrUpdate creates, then finds the person by e-mail in any case and updates it."""
    service = PersonService(migrated_engine)
    [created] = service.sync([{"email": "Ada@Example.com", "firstName": "Ada"}])
    assert created.status == "created" and created.id is not None
    [updated] = service.sync([{"email": "ada@EXAMPLE.COM", "lastName": "Lovelace"}])
    assert updated == RecordOutcome("updated", created.id)
    [person] = service.get_by_ids([created.id], ["email", "firstName", "lastName"])
    # the stored spelling is kept when the lookup matched it case-insensitively
    assert person == {
        "id": created.id,
        "email": "Ada@Example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
    }
    found, token = service.find("email", ["ADA@example.COM"])
    assert [p["id"] for p in found] == [created.id] and token is None


def test_values_are_stored_in_wire_format(migrated_engine: Engine) -> None:
    """Dates, date-times, booleans and numbers come back as Marketo sends them."""
    service = PersonService(migrated_engine)
    [outcome] = service.sync(
        [
            {
                "email": "w@x.com",
                "dateOfBirth": "1990-05-06",
                "unsubscribed": "true",
                "numberOfEmployees": "42",
                "annualRevenue": 1500.5,
                "lastInterestingMomentDate": "2026-01-02T04:04:05+01:00",
            }
        ]
    )
    assert outcome.id is not None
    [row] = service.get_by_ids(
        [outcome.id],
        [
            "dateOfBirth",
            "unsubscribed",
            "numberOfEmployees",
            "annualRevenue",
            "lastInterestingMomentDate",
            "doNotCall",
            "createdAt",
        ],
    )
    assert row["dateOfBirth"] == "1990-05-06"
    assert row["unsubscribed"] is True and row["doNotCall"] is False
    assert row["numberOfEmployees"] == 42 and row["annualRevenue"] == 1500.5
    assert row["lastInterestingMomentDate"] == "2026-01-02T03:04:05Z"
    assert isinstance(row["createdAt"], str) and str(row["createdAt"]).endswith("Z")


def test_each_error_code_skips_only_its_record(migrated_engine: Engine) -> None:
    """1006 unknown field, 1003 bad value / read-only / id on create, 1004, 1005, 1007."""
    service = PersonService(migrated_engine)
    service.sync([{"email": "dup@x.com"}], action="createDuplicate")
    service.sync([{"email": "dup@x.com"}], action="createDuplicate")
    service.sync([{"email": "one@x.com"}])
    outcomes = service.sync(
        [
            {"email": "a@x.com", "favouriteColour": "red"},
            {"email": "b@x.com", "numberOfEmployees": "many"},
            {"email": "c@x.com", "crmType": "Lead"},
            {"email": "d@x.com", "firstName": "x" * 256},
            {"email": "DUP@x.com", "firstName": "Two"},
            {"email": "fine@x.com"},
        ]
    )
    assert [o.status for o in outcomes] == ["skipped"] * 5 + ["created"]
    assert [_codes(o) for o in outcomes[:5]] == [["1006"], ["1001"], ["1003"], ["1001"], ["1007"]]
    assert "favouriteColour" in outcomes[0].reasons[0].message
    assert "integer" in outcomes[1].reasons[0].message
    [missing] = service.sync([{"email": "nobody@x.com"}], action="updateOnly")
    assert _codes(missing) == ["1004"]
    [exists] = service.sync([{"email": "one@x.com"}], action="createOnly")
    assert _codes(exists) == ["1005"]
    [with_id] = service.sync([{"id": 1, "email": "z@x.com"}], action="createOnly")
    assert _codes(with_id) == ["1003"]
    [unknown_id] = service.sync([{"id": 999_999, "firstName": "Q"}], action="updateOnly")
    assert _codes(unknown_id) == ["1004"]
    # the skipped records wrote nothing at all
    assert _count(migrated_engine, persons) == 4
    assert [r["operation"] for r in _outbox(migrated_engine)] == ["create"] * 4


def test_update_by_id_and_custom_lookup_field(migrated_engine: Engine) -> None:
    """updateOnly with ``id`` in the record; a custom string field as lookupField."""
    with migrated_engine.begin() as conn:
        add_local_field(conn, "person", "memberCode", "Member code", "string")
    service = PersonService(migrated_engine)
    [made] = service.sync([{"email": "m@x.com", "memberCode": "M-1"}])
    [by_id] = service.sync([{"id": made.id, "city": "Oslo"}], action="updateOnly")
    assert by_id == RecordOutcome("updated", made.id)
    [by_code] = service.sync(
        [{"memberCode": "M-1", "city": "Bergen"}], action="updateOnly", lookup_field="memberCode"
    )
    assert by_code == RecordOutcome("updated", made.id)
    assert made.id is not None
    [row] = service.get_by_ids([made.id], ["city", "memberCode"])
    assert row["city"] == "Bergen" and row["memberCode"] == "M-1"
    found, _ = service.find("memberCode", ["M-1"], ["email"])
    assert found == [{"id": made.id, "email": "m@x.com"}]


def test_unsupported_or_unknown_lookup_fields_are_refused(migrated_engine: Engine) -> None:
    """firstName is not a lookup field (1011); an unknown one is 1006 (spec §3)."""
    service = PersonService(migrated_engine)
    with pytest.raises(InvalidValueError) as unsupported:
        service.sync([{"firstName": "A"}], lookup_field="firstName")
    assert unsupported.value.code == "1011"
    with pytest.raises(UnknownFieldError) as unknown:
        service.find("shoeSize", ["42"])
    assert unknown.value.code == "1006"
    with pytest.raises(UnknownFieldError):
        service.get_by_ids([1], ["email", "shoeSize"])
    with pytest.raises(InvalidValueError):
        service.sync([{"email": "a@x.com"}], action="upsertPlease")


def test_no_op_update_writes_nothing(migrated_engine: Engine) -> None:
    """An update that changes nothing is reported "updated" and writes nothing (issue 2 §3)."""
    service = PersonService(migrated_engine)
    [made] = service.sync([{"email": "n@x.com", "firstName": "N", "unsubscribed": False}])
    assert made.id is not None
    before = service.get_by_ids([made.id], ["updatedAt"])
    activity_count = _count(migrated_engine, activities)
    [again] = service.sync([{"email": "n@x.com", "firstName": "N", "unsubscribed": "false"}])
    assert again == RecordOutcome("updated", made.id)
    assert _count(migrated_engine, activities) == activity_count
    assert len(_outbox(migrated_engine)) == 1
    assert service.get_by_ids([made.id], ["updatedAt"]) == before


def test_changes_write_activities_and_outbox(migrated_engine: Engine) -> None:
    """New Lead (12) on create; Change Data Value (13) with old and new value per changed field;
    one outbox row per person change naming the changed fields (B18)."""
    service = PersonService(migrated_engine)
    [made] = service.sync([{"email": "c@x.com", "firstName": "Old"}], source="Form")
    service.sync([{"email": "c@x.com", "firstName": "New", "city": "Rome"}], source="Form")
    with migrated_engine.connect() as conn:
        rows = list(conn.execute(select(activities).order_by(activities.c.id)).mappings())
    assert [(r["type_id"], r["field_name"]) for r in rows] == [
        (12, None),
        (13, "firstName"),
        (13, "city"),
    ]
    assert all(r["person_id"] == made.id for r in rows)
    assert rows[1]["attributes"]["Old Value"] == "Old"
    assert rows[1]["attributes"]["New Value"] == "New"
    assert rows[1]["primary_value"] == "First Name"
    outbox = _outbox(migrated_engine)
    assert [(o["operation"], o["changed_fields"], o["source"]) for o in outbox] == [
        ("create", ["email", "firstName"], "Form"),
        ("update", ["firstName", "city"], "Form"),
    ]


def test_same_person_twice_in_one_call(migrated_engine: Engine) -> None:
    """The second record for a just-created e-mail updates that new person (one person)."""
    service = PersonService(migrated_engine)
    first, second = service.sync(
        [{"email": "t@x.com", "firstName": "T"}, {"email": "T@X.com", "lastName": "Twice"}]
    )
    assert first.status == "created" and second == RecordOutcome("updated", first.id)
    assert first.id is not None
    [row] = service.get_by_ids([first.id], ["firstName", "lastName"])
    assert (row["firstName"], row["lastName"]) == ("T", "Twice")
    assert _count(migrated_engine, persons) == 1


def test_failed_write_leaves_no_person_activity_or_outbox(migrated_engine: Engine) -> None:
    """Atomicity (B18): when the outbox insert fails the whole call is rolled back."""
    dialect = migrated_engine.dialect.name
    with migrated_engine.begin() as conn:
        if dialect == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON sync_outbox "
                    "WHEN NEW.source = 'explode' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_outbox() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.source = 'explode' THEN RAISE EXCEPTION 'refused'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON sync_outbox "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"
                )
            )
    service = PersonService(migrated_engine)
    [kept] = service.sync([{"email": "keep@x.com", "firstName": "Keep"}])
    with pytest.raises(Exception, match="refused"):
        service.sync(
            [{"email": "new@x.com"}, {"email": "keep@x.com", "firstName": "Changed"}],
            source="explode",
        )
    assert _count(migrated_engine, persons) == 1
    assert _count(migrated_engine, activities) == 1
    assert len(_outbox(migrated_engine)) == 1
    assert kept.id is not None
    assert service.get_by_ids([kept.id], ["firstName"])[0]["firstName"] == "Keep"


def test_find_pages_by_position_token(migrated_engine: Engine) -> None:
    """Get Leads by Filter Type returns a nextPageToken only while more remain (§1.2)."""
    service = PersonService(migrated_engine)
    service.sync([{"email": f"p{i}@x.com"} for i in range(5)])
    emails = [f"P{i}@x.com" for i in range(5)] + ["nobody@x.com"]
    page1, token1 = service.find("email", emails, batch_size=2)
    assert token1 is not None
    page2, token2 = service.find("email", emails, batch_size=2, next_page_token=token1)
    page3, token3 = service.find("email", emails, batch_size=2, next_page_token=token2)
    assert token3 is None
    ids = [int(str(p["id"])) for p in page1 + page2 + page3]
    assert len(ids) == 5 and ids == sorted(ids)
    by_id, _ = service.find("id", [str(ids[0]), str(ids[4])], ["email"])
    assert [p["email"] for p in by_id] == ["p0@x.com", "p4@x.com"]
    with pytest.raises(InvalidValueError):
        service.find("email", emails, next_page_token="not-a-token")


def test_get_by_ids_keeps_order_and_default_fields(migrated_engine: Engine) -> None:
    """Default fields are id, email, firstName, lastName, updatedAt, createdAt (§4.3)."""
    service = PersonService(migrated_engine)
    outcomes = service.sync([{"email": "1@x.com"}, {"email": "2@x.com"}])
    ids = [o.id for o in outcomes if o.id is not None]
    rows = service.get_by_ids([ids[1], 424242, ids[0]])
    assert [r["id"] for r in rows] == [ids[1], ids[0]]
    assert set(rows[0]) == {"id", "email", "firstName", "lastName", "updatedAt", "createdAt"}


def test_delete_records_activity_and_outbox(migrated_engine: Engine) -> None:
    """Delete Lead (37) is kept after the person is gone; the outbox learns it; unknown → 1004."""
    service = PersonService(migrated_engine)
    [made] = service.sync([{"email": "d@x.com", "firstName": "Dee", "lastName": "Lee"}])
    assert made.id is not None
    outcomes = service.delete([made.id, 777_777])
    assert outcomes[0] == RecordOutcome("deleted", made.id)
    assert _codes(outcomes[1]) == ["1004"]
    assert service.get_by_ids([made.id]) == []
    with migrated_engine.connect() as conn:
        deleted = (
            conn.execute(select(activities).where(activities.c.type_id == 37)).mappings().one()
        )
    assert deleted["person_id"] == made.id and deleted["primary_value"] == "Dee Lee"
    assert [o["operation"] for o in _outbox(migrated_engine)] == ["create", "delete"]


def test_system_fields_only_with_permission(migrated_engine: Engine) -> None:
    """The read-only CRM fields (B7) are refused from the API but writable by the engine."""
    service = PersonService(migrated_engine)
    [refused] = service.sync([{"email": "s@x.com", "crmIsDeleted": True}])
    assert _codes(refused) == ["1003"]
    [made] = service.sync(
        [{"email": "s@x.com", "crmType": "Lead", "crmLeadId": "abc"}], allow_system_fields=True
    )
    assert made.id is not None
    [row] = service.get_by_ids([made.id], ["crmType", "crmLeadId", "crmIsDeleted"])
    assert row == {"id": made.id, "crmType": "Lead", "crmLeadId": "abc", "crmIsDeleted": False}
    found, _ = service.find("crmLeadId", ["abc"])
    assert [p["id"] for p in found] == [made.id]


def test_values_the_database_cannot_hold_are_refused_per_record(migrated_engine: Engine) -> None:
    """Out-of-range numbers and NUL characters skip their record with 1001 (invalid value),
    impossible ids with 1003, instead of failing the whole call."""
    service = PersonService(migrated_engine)
    outcomes = service.sync(
        [
            {"email": "big@x.com", "numberOfEmployees": 2**40},
            {"email": "nul@x.com", "firstName": "a\x00b"},
            {"id": 2**70, "firstName": "x"},
            {"email": "ok@x.com"},
        ]
    )
    assert [_codes(o) for o in outcomes] == [["1001"], ["1001"], ["1003"], []]
    assert "out of range" in outcomes[0].reasons[0].message
    assert service.get_by_ids([2**70, -5, 0]) == []
    assert service.find("id", [str(2**70)]) == ([], None)
    assert service.find("email", ["a\x00@x.com"]) == ([], None)
    deleted = service.delete([2**70])
    assert _codes(deleted[0]) == ["1004"]


def test_ids_are_never_reused(migrated_engine: Engine) -> None:
    """A deleted person's id is not given to a new person (deleted leads and CRM links keep
    meaning what they meant, B27), and bulk-created ids map to the right records."""
    service = PersonService(migrated_engine)
    made = service.sync([{"email": f"r{i}@x.com"} for i in range(3)])
    last = made[-1].id
    assert last is not None
    service.delete([last])
    again = service.sync([{"email": "r3@x.com"}, {"email": "r4@x.com"}])
    new_ids = [o.id for o in again if o.id is not None]
    assert min(new_ids) > last
    rows = service.get_by_ids(new_ids, ["email"])
    assert [r["email"] for r in rows] == ["r3@x.com", "r4@x.com"]


def test_concurrent_calls_neither_lose_updates_nor_duplicate(migrated_engine: Engine) -> None:
    """Concurrent syncs of one person see each other's writes: every Change Data Value's old
    value is the previous new value, and concurrent upserts of a new e-mail make one person."""
    service = PersonService(migrated_engine)
    [made] = service.sync([{"email": "busy@x.com", "firstName": "v0"}])

    def update(worker: int) -> None:
        for step in range(6):
            service.sync([{"email": "busy@x.com", "firstName": f"w{worker}-{step}"}])
            service.sync([{"email": "fresh@x.com", "lastName": f"w{worker}-{step}"}])

    threads = [threading.Thread(target=update, args=(worker,)) for worker in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with migrated_engine.connect() as conn:
        changes = (
            conn.execute(
                select(activities.c.attributes)
                .where(activities.c.type_id == 13, activities.c.person_id == made.id)
                .order_by(activities.c.id)
            )
            .scalars()
            .all()
        )
    assert len(changes) == 18
    previous = "v0"
    for change in changes:
        assert change["Old Value"] == previous
        previous = change["New Value"]
    found, _ = service.find("email", ["fresh@x.com"])
    assert len(found) == 1


def test_changes_from_dynamics_do_not_enter_the_outbox(migrated_engine: Engine) -> None:
    """B19: a change applied from Dynamics is logged as activity but never queued back."""
    service = PersonService(migrated_engine)
    [made] = service.sync(
        [{"crmLeadId": "L-1", "email": "crm@x.com", "crmType": "Lead"}],
        lookup_field="crmLeadId",
        source="Microsoft Dynamics sync",
        allow_system_fields=True,
        write_outbox=False,
    )
    assert made.status == "created"
    [again] = service.sync(
        [{"crmLeadId": "L-1", "firstName": "From CRM"}],
        lookup_field="crmLeadId",
        allow_system_fields=True,
        write_outbox=False,
    )
    assert again == RecordOutcome("updated", made.id)
    assert _outbox(migrated_engine) == []
    assert _count(migrated_engine, activities) == 2


def test_more_than_a_thousand_matches_is_1003(migrated_engine: Engine) -> None:
    """Get Leads by Filter Type refuses a filter matching over 1,000 leads (spec §4.4)."""
    service = PersonService(migrated_engine)
    for _ in range(4):
        service.sync([{"email": "many@x.com"}] * 250, action="createDuplicate")
    page, token = service.find("email", ["many@x.com"], batch_size=300)
    assert len(page) == 300 and token is not None
    service.sync([{"email": "many@x.com"}], action="createDuplicate")
    with pytest.raises(InvalidValueError, match="Too many results") as refused:
        service.find("email", ["MANY@x.com"])
    assert refused.value.code == "1003"
