"""Activity log reads: paging tokens, activities, lead changes, deleted leads (spec §5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from crmsync.errors import InvalidValueError, UnknownFieldError
from crmsync.marketing.activities import ACTIVITY_TYPES, ActivityService
from crmsync.marketing.activity_types import ACTIVITY_TYPES_BY_ID
from crmsync.marketing.lists import ListService
from crmsync.marketing.persons import PersonService

YESTERDAY = datetime.now(UTC) - timedelta(days=1)


def test_activity_types_use_marketo_ids() -> None:
    """12 New Lead, 13 Change Data Value, 24/25 lists, 37 Delete Lead, 300 Sync to Microsoft."""
    names = {t.id: t.name for t in ACTIVITY_TYPES}
    assert names[12] == "New Lead" and names[13] == "Change Data Value"
    assert names[24] == "Add to List" and names[25] == "Remove from List"
    assert names[37] == "Delete Lead" and names[300] == "Sync Lead to Microsoft"
    ours = [t.id for t in ACTIVITY_TYPES if t.id >= 500]
    assert ours and all(500 <= i < 600 for i in ours)
    assert len(ACTIVITY_TYPES_BY_ID) == len(ACTIVITY_TYPES)


def test_activities_page_in_order_with_more_result(migrated_engine: Engine) -> None:
    """Pages follow the token; moreResult is true until the last page; a token always comes."""
    people = PersonService(migrated_engine)
    service = ActivityService(migrated_engine)
    people.sync([{"email": f"a{i}@x.com"} for i in range(5)])
    token = service.paging_token(YESTERDAY)
    seen: list[int] = []
    pages = 0
    while True:
        page = service.list(token, [12], batch_size=2)
        pages += 1
        seen.extend(int(str(item["leadId"])) for item in page.items)
        assert page.next_page_token
        token = page.next_page_token
        if not page.more_result:
            break
    assert pages == 3 and len(seen) == 5
    first = service.list(service.paging_token(YESTERDAY), [12], batch_size=1).items[0]
    assert set(first) >= {
        "id",
        "marketoGUID",
        "leadId",
        "activityDate",
        "activityTypeId",
        "attributes",
    }
    assert str(first["activityDate"]).endswith("Z")
    # a token from now on sees only what happens later
    later = service.paging_token(datetime.now(UTC) + timedelta(seconds=5))
    assert service.list(later, [12]).items == []


def test_filters_by_lead_and_list(migrated_engine: Engine) -> None:
    """leadIds and listId narrow the activities (spec §5.3)."""
    people = PersonService(migrated_engine)
    service = ActivityService(migrated_engine)
    ids = [o.id for o in people.sync([{"email": f"f{i}@x.com"} for i in range(3)])]
    assert all(isinstance(i, int) for i in ids)
    lists = ListService(migrated_engine)
    list_id = lists.create("Webinar")
    lists.add_members(list_id, [ids[2]])  # type: ignore[list-item]
    token = service.paging_token(YESTERDAY)
    by_lead = service.list(token, [12], lead_ids=[ids[1]])  # type: ignore[list-item]
    assert [item["leadId"] for item in by_lead.items] == [ids[1]]
    assert service.list(token, [12], lead_ids=[2**70]).items == []
    by_list = service.list(token, [12, 24], list_id=list_id)
    assert [(i["activityTypeId"], i["leadId"]) for i in by_list.items] == [
        (12, ids[2]),
        (24, ids[2]),
    ]
    assert by_list.items[1]["primaryAttributeValue"] == "Webinar"


def test_lead_changes_show_old_and_new_values(migrated_engine: Engine) -> None:
    """Only New Lead and Change Data Value of the requested fields (spec §5.4)."""
    people = PersonService(migrated_engine)
    service = ActivityService(migrated_engine)
    [made] = people.sync([{"email": "lc@x.com", "firstName": "A", "city": "X"}])
    people.sync([{"email": "lc@x.com", "firstName": "B", "city": "Y"}])
    page = service.lead_changes(service.paging_token(YESTERDAY), ["firstName"])
    assert [item["activityTypeId"] for item in page.items] == [12, 13]
    change = page.items[1]
    assert change["leadId"] == made.id
    assert change["fields"] == [{"id": 4, "name": "firstName", "newValue": "B", "oldValue": "A"}]
    assert {"name": "Source", "value": "Web service API"} in change["attributes"]  # type: ignore[operator]
    with pytest.raises(UnknownFieldError):
        service.lead_changes(page.next_page_token, ["shoeSize"])


def test_deleted_leads(migrated_engine: Engine) -> None:
    """Deleted persons appear as Delete Lead (37) activities (spec §5.5)."""
    people = PersonService(migrated_engine)
    service = ActivityService(migrated_engine)
    [made] = people.sync([{"email": "gone@x.com", "firstName": "Gone"}])
    assert made.id is not None
    people.delete([made.id])
    page = service.deleted_leads(service.paging_token(YESTERDAY))
    assert [(i["leadId"], i["activityTypeId"], i["primaryAttributeValue"]) for i in page.items] == [
        (made.id, 37, "Gone")
    ]
    assert page.more_result is False


def test_record_and_bad_tokens(migrated_engine: Engine) -> None:
    """Other services append activities in their own transaction; bad tokens are refused."""
    service = ActivityService(migrated_engine)
    with migrated_engine.begin() as conn:
        service.record(conn, 5, 500, "update", {"Error Code": "0x80040237", "Message": "dup"})
    page = service.list(service.paging_token(YESTERDAY), [500])
    assert page.items[0]["attributes"] == [
        {"name": "Error Code", "value": "0x80040237"},
        {"name": "Message", "value": "dup"},
    ]
    with pytest.raises(InvalidValueError):
        service.list("!!!", [12])
    with pytest.raises(InvalidValueError):
        service.list(page.next_page_token, [])
    with migrated_engine.begin() as conn, pytest.raises(InvalidValueError):
        service.record(conn, 5, 9999, None, {})
