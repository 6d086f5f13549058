"""Smart lists (B36, R87): filters evaluated in SQL agree with a plain Python model of the same
filters, on SQLite and PostgreSQL; bad definitions are refused with a clear message. The model
includes filters on a custom entity read from Dynamics (B45): "has a visit", "has a visit whose
note / hours ...", where visits deleted in Dynamics count for nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert
from sqlalchemy.engine import Connection

from crmsync.errors import InvalidValueError
from crmsync.marketing.smartlist_logic import fold_logic, parse_logic
from crmsync.marketing.smartlists import Filter, SmartList, SmartListQuery
from crmsync.store.tables import (
    companies,
    custom_entities,
    custom_object_rows,
    list_members,
    persons,
    static_lists,
)

# ---- the Python model ----------------------------------------------------------------------

CITIES = ("Paris", "paris", "Lyon", "", None)
NAMES = ("Ann", "anna", "Bob", "b%b", "", None)


@dataclass(frozen=True)
class Person:
    first_name: str | None
    employees: int | None
    birth: str | None
    crm_type: str | None
    crm_deleted: bool
    company_city: str | None  # None also when there is no company
    has_company: bool
    in_list: bool
    visits: tuple[Visit, ...] = ()


@dataclass(frozen=True)
class Visit:
    """A record of the custom entity ``new_visit`` linked to the person."""

    note: str | None
    hours: int | None
    deleted: bool


def _text(value: str | None) -> str | None:
    return None if value is None else value.lower()


def model(person: Person, item: Filter) -> bool:
    """What the filter means, written the obvious way."""
    if item.field.startswith("custom:"):
        alive = [v for v in person.visits if not v.deleted]
        if item.field == "custom:new_visit":
            return bool(alive) if item.operator == "is_not_empty" else not alive
        return any(visit_model(v, item) for v in alive)
    if item.field == "list":
        return person.in_list if item.operator == "in_list" else not person.in_list
    raw: object = {
        "firstName": person.first_name,
        "numberOfEmployees": person.employees,
        "dateOfBirth": person.birth,
        "crmType": person.crm_type,
        "crmIsDeleted": person.crm_deleted,
        "company.billingCity": person.company_city,
    }[item.field]
    is_text = item.field in {"firstName", "crmType", "company.billingCity"}
    value: object = _text(raw) if is_text and isinstance(raw, str) else raw  # type: ignore[arg-type]
    return compare_value(value, item, is_text)


def compare_value(value: object, item: Filter, is_text: bool) -> bool:
    """``value`` (lower-cased text, a number, a date, None) compared as ``item`` says."""
    wanted = [str(v).lower() if is_text else v for v in item.values]
    op = item.operator
    if op == "is_empty":
        return value is None or value == ""
    if op == "is_not_empty":
        return not (value is None or value == "")
    if op == "is":
        return value is not None and value in wanted
    if op == "is_not":
        return value is None or value not in wanted
    if value is None:
        return False
    if op == "contains":
        return any(str(w) in str(value) for w in wanted)
    if op == "starts_with":
        return any(str(value).startswith(str(w)) for w in wanted)
    compare: dict[str, Callable[[object, object], bool]] = {
        "gt": lambda a, b: a > b,  # type: ignore[operator]
        "lt": lambda a, b: a < b,  # type: ignore[operator]
        "gte": lambda a, b: a >= b,  # type: ignore[operator]
        "lte": lambda a, b: a <= b,  # type: ignore[operator]
    }
    if op == "between":
        low, high = sorted(wanted)  # type: ignore[type-var]
        return bool(low <= value <= high)  # type: ignore[operator]
    return compare[op](value, wanted[0])


def visit_model(visit: Visit, item: Filter) -> bool:
    """Whether one visit matches a ``custom:new_visit.<field>`` filter."""
    is_text = item.field.endswith(".new_note")
    raw: object = visit.note if is_text else visit.hours
    value: object = _text(raw) if isinstance(raw, str) else raw  # type: ignore[arg-type]
    return compare_value(value, item, is_text)


def _picker(marks: list[bool]) -> Callable[[int], bool]:
    return lambda number: marks[number - 1]


def model_members(people: list[Person], smart_list: SmartList) -> set[int]:
    result = set()
    for index, person in enumerate(people):
        marks = [model(person, f) for f in smart_list.filters]
        if smart_list.logic == "all":
            inside = all(marks)
        elif smart_list.logic == "any":
            inside = any(marks)
        else:
            tree = parse_logic(smart_list.logic, len(marks))
            inside = fold_logic(tree, _picker(marks), lambda b: not b, all, any)
        if inside:
            result.add(index)
    return result


# ---- strategies ----------------------------------------------------------------------------

dates = st.dates().map(lambda d: d.isoformat())
people_strategy = st.lists(
    st.builds(
        Person,
        first_name=st.sampled_from(NAMES),
        employees=st.one_of(st.none(), st.integers(-5, 5)),
        birth=st.one_of(st.none(), st.sampled_from(["1990-01-01", "1990-06-15", "2001-12-31"])),
        crm_type=st.sampled_from(["Lead", "Contact", None]),
        crm_deleted=st.booleans(),
        company_city=st.sampled_from(CITIES),
        has_company=st.booleans(),
        in_list=st.booleans(),
        visits=st.lists(
            st.builds(
                Visit,
                note=st.sampled_from(["Demo", "demo day", "", None]),
                hours=st.one_of(st.none(), st.integers(0, 4)),
                deleted=st.booleans(),
            ),
            max_size=3,
        ).map(tuple),
    ),
    max_size=12,
)

text_filters = st.builds(
    Filter,
    field=st.sampled_from(["firstName", "crmType", "company.billingCity"]),
    operator=st.sampled_from(
        ["is", "is_not", "contains", "starts_with", "is_empty", "is_not_empty"]
    ),
    values=st.lists(
        st.sampled_from(["ann", "B", "b%", "Lead", "PARIS", "a", "_"]), min_size=1, max_size=2
    ).map(tuple),
)
number_filters = st.one_of(
    st.builds(
        Filter,
        field=st.just("numberOfEmployees"),
        operator=st.sampled_from(["is", "is_not", "gt", "lt", "gte", "lte"]),
        values=st.integers(-6, 6).map(lambda n: (n,)),
    ),
    st.builds(
        Filter,
        field=st.just("numberOfEmployees"),
        operator=st.sampled_from(["between", "is_empty"]),
        values=st.tuples(st.integers(-6, 6), st.integers(-6, 6)),
    ),
    st.builds(
        Filter,
        field=st.just("dateOfBirth"),
        operator=st.sampled_from(["gt", "lt", "is", "is_not_empty"]),
        values=st.sampled_from(["1990-01-01", "1995-01-01", "2001-12-31"]).map(lambda d: (d,)),
    ),
)
other_filters = st.one_of(
    st.builds(
        Filter,
        field=st.just("crmIsDeleted"),
        operator=st.sampled_from(["is", "is_not"]),
        values=st.booleans().map(lambda b: (b,)),
    ),
    st.builds(
        Filter,
        field=st.just("list"),
        operator=st.sampled_from(["in_list", "not_in_list"]),
        values=st.just((1,)),
    ),
)
custom_filters = st.one_of(
    st.builds(
        Filter,
        field=st.just("custom:new_visit"),
        operator=st.sampled_from(["is_empty", "is_not_empty"]),
    ),
    st.builds(
        Filter,
        field=st.just("custom:new_visit.new_note"),
        operator=st.sampled_from(["is", "is_not", "contains", "starts_with", "is_empty"]),
        values=st.sampled_from(["demo", "DAY", "x"]).map(lambda v: (v,)),
    ),
    st.builds(
        Filter,
        field=st.just("custom:new_visit.new_hours"),
        operator=st.sampled_from(["is", "is_not", "gt", "lte", "is_not_empty"]),
        values=st.integers(0, 4).map(lambda n: (n,)),
    ),
)
filters_strategy = st.lists(
    st.one_of(text_filters, number_filters, other_filters, custom_filters), min_size=1, max_size=4
)


@st.composite
def smart_lists(draw: st.DrawFn) -> SmartList:
    filters = tuple(draw(filters_strategy))
    n = len(filters)
    logic = draw(st.sampled_from(["all", "any", "expr"]))
    if logic == "expr":
        numbers = [str(i) for i in range(1, n + 1)]
        if n == 1:
            logic = "not 1" if draw(st.booleans()) else "(1)"
        else:
            logic = f"{numbers[0]} and ({' or '.join(numbers[1:])})"
            if draw(st.booleans()):
                logic = f"not ({logic}) or {numbers[-1]}"
    return SmartList(filters, logic)


# ---- the database --------------------------------------------------------------------------


def _store(engine: Engine, people: list[Person]) -> list[int]:
    with engine.begin() as conn:
        conn.execute(delete(list_members))
        conn.execute(delete(custom_object_rows))
        conn.execute(delete(custom_entities))
        _visit_entity(conn)
        conn.execute(delete(persons))
        conn.execute(delete(companies))
        conn.execute(delete(static_lists))
        conn.execute(
            insert(static_lists).values(
                id=1,
                name="VIP",
                created_at="2026-01-01T00:00:00Z",
                updated_at="2026-01-01T00:00:00Z",
            )
        )
        ids = []
        for number, person in enumerate(people, start=1):
            company_id = None
            if person.has_company:
                company_id = conn.execute(
                    insert(companies).values(company=f"C{number}", billingCity=person.company_city)
                ).inserted_primary_key[0]
            person_id = conn.execute(
                insert(persons).values(
                    email=f"p{number}@example.com",
                    firstName=person.first_name,
                    numberOfEmployees=person.employees,
                    dateOfBirth=person.birth,
                    crmType=person.crm_type,
                    crmIsDeleted=person.crm_deleted,
                    company_id=company_id,
                )
            ).inserted_primary_key[0]
            ids.append(int(person_id))
            for index, visit in enumerate(person.visits):
                conn.execute(
                    insert(custom_object_rows).values(
                        entity="new_visit",
                        crm_id=f"{number}-{index}",
                        person_id=person_id,
                        values={"new_note": visit.note, "new_hours": visit.hours},
                        crm_is_deleted=visit.deleted,
                        created_at=STAMP,
                        updated_at=STAMP,
                    )
                )
            if person.in_list:
                conn.execute(
                    insert(list_members).values(list_id=1, person_id=person_id, added_at="x")
                )
    return ids


STAMP = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _visit_entity(conn: Connection) -> None:
    """``new_visit`` enabled as a custom entity two levels below contact."""
    conn.execute(
        insert(custom_entities).values(
            name="new_visit",
            display_name="Visit",
            entity_set="new_visits",
            primary_id="new_visitid",
            path=[
                {"entity": "new_visit", "attribute": "new_projectid", "target": "new_project"},
                {"entity": "new_project", "attribute": "new_contactid", "target": "contact"},
            ],
            fields=[
                {"name": "new_note", "displayName": "Note", "dataType": "string"},
                {"name": "new_hours", "displayName": "Hours", "dataType": "integer"},
            ],
            enabled=True,
            created_at=STAMP,
            updated_at=STAMP,
        )
    )


def _normalised(people: list[Person]) -> list[Person]:
    """A person without a company has no company city."""
    return [p if p.has_company else Person(**{**p.__dict__, "company_city": None}) for p in people]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=people_strategy, smart_list=smart_lists())
def test_smart_list_in_sql_agrees_with_the_model(
    migrated_engine: Engine, people: list[Person], smart_list: SmartList
) -> None:
    """Count and members computed by the database equal the Python model's answer."""
    people = _normalised(people)
    ids = _store(migrated_engine, people)
    query = SmartListQuery(migrated_engine)
    expected = {ids[i] for i in model_members(people, smart_list)}
    assert set(query.member_ids(smart_list, limit=100)) == expected
    assert query.count(smart_list) == len(expected)


def test_members_page_in_id_order(migrated_engine: Engine) -> None:
    """A page of members starts after the given id and holds at most ``limit`` ids."""
    ids = _store(migrated_engine, [Person("Ann", 1, None, "Lead", False, None, False, False)] * 5)
    query = SmartListQuery(migrated_engine)
    lead = SmartList((Filter("crmType", "is", ("lead",)),))
    assert query.member_ids(lead, limit=2) == ids[:2]
    assert query.member_ids(lead, after_id=ids[1], limit=2) == ids[2:4]


@pytest.mark.parametrize(
    ("smart_list", "message"),
    [
        (SmartList((Filter("nope", "is", ("x",)),)), "unknown person field 'nope'"),
        (SmartList((Filter("firstName", "like", ("x",)),)), "unknown operator 'like'"),
        (SmartList((Filter("firstName", "gt", ("x",)),)), "works on numbers and dates"),
        (SmartList((Filter("numberOfEmployees", "is", ("many",)),)), "filter 1"),
        (SmartList((Filter("numberOfEmployees", "between", (1,)),)), "exactly two values"),
        (SmartList((Filter("firstName", "is", ()),)), "needs a value"),
        (SmartList((Filter("company.nope", "is", ("x",)),)), "unknown company field"),
        (SmartList((Filter("list", "in_list", ("abc",)),)), "static list ids"),
        (SmartList((Filter("custom:new_nope", "is_empty"),)), "unknown custom entity 'new_nope'"),
        (SmartList((Filter("custom:new_visit", "is", ("x",)),)), "takes is_not_empty"),
        (SmartList((Filter("custom:new_visit.nope", "is", ("x",)),)), "has no field 'nope'"),
        (SmartList((Filter("custom:new_visit.new_hours", "contains", ("1",)),)), "text fields"),
        (SmartList((Filter("firstName", "is_empty"),), "1 and 2"), "there is no filter 2"),
        (SmartList((Filter("firstName", "is_empty"),), "1 and"), "ends too early"),
        (SmartList((Filter("firstName", "is_empty"),), "(1"), "not closed"),
        (SmartList((Filter("firstName", "is_empty"),), "1; drop table persons"), "unexpected ';'"),
        (SmartList((Filter("firstName", "is_empty"),), "1 xor 1"), "unknown word 'xor'"),
        (SmartList((Filter("firstName", "is_empty"),), "(" * 60 + "1" + ")" * 60), "nested deeper"),
    ],
)
def test_bad_smart_lists_are_refused_with_a_reason(
    migrated_engine: Engine, smart_list: SmartList, message: str
) -> None:
    _store(migrated_engine, [])  # new_visit is a custom entity
    with pytest.raises(InvalidValueError, match=message.replace("(", r"\(")):
        SmartListQuery(migrated_engine).count(smart_list)


def test_smart_list_round_trips_through_json() -> None:
    raw = {"filters": [{"field": "crmType", "operator": "IS", "value": "Lead"}], "logic": "any"}
    smart_list = SmartList.from_dict(raw)
    assert smart_list == SmartList((Filter("crmType", "is", ("Lead",)),), "any")
    assert SmartList.from_dict(smart_list.as_dict()) == smart_list
    with pytest.raises(InvalidValueError, match="needs a 'field'"):
        SmartList.from_dict({"filters": [{"operator": "is"}]})
