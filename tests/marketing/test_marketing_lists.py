"""Static lists and membership (spec marketo-rest §6.4, §4.12)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from crmsync.errors import InvalidValueError, RecordNotFoundError
from crmsync.marketing.lists import ListService
from crmsync.marketing.persons import PersonService
from crmsync.store.tables import activities


def _people(engine: Engine, count: int) -> list[int]:
    outcomes = PersonService(engine).sync([{"email": f"l{i}@x.com"} for i in range(count)])
    return [o.id for o in outcomes if o.id is not None]


def test_membership_outcomes_and_activities(migrated_engine: Engine) -> None:
    """added / removed / memberof / notmemberof, 1004 unknown, 1015 not in list; 24/25 logged."""
    ids = _people(migrated_engine, 3)
    lists = ListService(migrated_engine)
    list_id = lists.create("Newsletter", "monthly")
    added = lists.add_members(list_id, [ids[0], ids[1], 999_999, ids[0]])
    assert [(o.status, o.id) for o in added] == [
        ("added", ids[0]),
        ("added", ids[1]),
        ("skipped", 999_999),
        ("added", ids[0]),
    ]
    assert added[2].reasons[0].code == "1004"
    checked = lists.is_member(list_id, [ids[0], ids[2], 999_999])
    assert [o.status for o in checked] == ["memberof", "notmemberof", "skipped"]
    removed = lists.remove_members(list_id, [ids[1], ids[2], 999_999])
    assert [o.status for o in removed] == ["removed", "skipped", "skipped"]
    assert [o.reasons[0].code for o in removed[1:]] == ["1015", "1004"]
    with migrated_engine.connect() as conn:
        counts: dict[int, int] = dict(
            conn.execute(
                select(activities.c.type_id, func.count())
                .where(activities.c.type_id.in_([24, 25]))
                .group_by(activities.c.type_id)
            ).all()
        )
    assert counts == {24: 2, 25: 1}
    [impossible] = lists.add_members(list_id, [2**70])
    assert impossible.reasons[0].code == "1004"


def test_members_page_and_lists_query(migrated_engine: Engine) -> None:
    """Members page by id with a token while more remain; lists query by id and name."""
    ids = _people(migrated_engine, 3)
    lists = ListService(migrated_engine)
    first = lists.create("A")
    second = lists.create("B")
    lists.add_members(first, ids)
    page1, token = lists.members(first, ["email"], batch_size=2)
    assert token is not None
    page2, end = lists.members(first, ["email"], batch_size=2, next_page_token=token)
    assert end is None
    assert [p["email"] for p in page1 + page2] == ["l0@x.com", "l1@x.com", "l2@x.com"]
    items, _ = lists.query(names=["B"])
    assert [i["id"] for i in items] == [second]
    all_items, _ = lists.query()
    assert [i["name"] for i in all_items] == ["A", "B"]
    got = lists.get(first)
    assert got is not None and got["name"] == "A" and str(got["createdAt"]).endswith("Z")
    assert lists.get(424242) is None


def test_list_errors(migrated_engine: Engine) -> None:
    """Unknown lists are 1013; duplicate or blank names are refused."""
    lists = ListService(migrated_engine)
    lists.create("Only")
    with pytest.raises(InvalidValueError) as duplicate:
        lists.create("Only")
    assert duplicate.value.code == "1017"
    with pytest.raises(InvalidValueError):
        lists.create("  ")
    with pytest.raises(RecordNotFoundError) as missing:
        lists.add_members(424242, [1])
    assert missing.value.code == "1013"


def test_deleting_a_person_removes_membership(migrated_engine: Engine) -> None:
    """A deleted person leaves its lists (membership rows cascade)."""
    ids = _people(migrated_engine, 2)
    lists = ListService(migrated_engine)
    list_id = lists.create("C")
    lists.add_members(list_id, ids)
    PersonService(migrated_engine).delete([ids[0]])
    members, _ = lists.members(list_id)
    assert [m["id"] for m in members] == [ids[1]]
