"""Date-times kept as Dataverse's UTC text through a read (the initial sync's conversion plan):
every wire value of every column type the emulator has converts to exactly the marketing
value (or the same error) as through a datetime, and the stored people and baselines are the
same on both databases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sync_harness import engine_client, running_org

from crmsync.dynamics.query import LOOKUP_ANNOTATION, EntitySetInfo, RowConverter, is_utc_text
from crmsync.dynamics.types import AttributeSchema, AttributeType, EntitySchema
from crmsync.emulator.config import default_config
from crmsync.emulator.metadata import AttributeDef
from crmsync.errors import ValidationFailedError
from crmsync.store.db import open_database, upgrade_database
from crmsync.store.tables import crm_links, persons, sync_baselines
from crmsync.sync.cycle import SyncCycle
from crmsync.sync.mapping import EntityMapping, mapping_for_selection, readable

T = AttributeType
ENTITIES = ("lead", "contact", "account", "opportunity", "systemuser", "team")
RECORD_ID = "7d1b6a52-0c3e-4f5a-9b8c-2d3e4f5a6b7c"

WIRE_DATES: tuple[Any, ...] = (
    None,
    "2026-03-04T05:06:07Z",
    "1753-01-01T00:00:00Z",
    "1752-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2024-02-29T12:00:00Z",
    "2023-02-29T00:00:00Z",  # no such day
    "2026-13-01T00:00:00Z",
    "2026-03-04T24:00:00Z",
    "2026-03-04T23:59:60Z",
    "2026-03-04T05:06:07.123Z",
    "2026-03-04T05:06:07.000Z",
    "2026-03-04T05:06:07+00:00",
    "2026-03-04T05:06:07+02:00",
    "2026-03-04T05:06:07-05:30",
    "2026-03-04T01:00:00+14:00",  # the previous day in UTC
    "2026-03-04T05:06:07z",
    "2026-03-04T05:06Z",
    "2026-03-04t05:06:07Z",
    "2026-03-04",
    "2026-03-04T05:06:07",
    " 2026-03-04T05:06:07Z",
    "2026-03-04T05:06:07Z ",
    "20260304T050607Z",
    "2026-03-04T050607.1Z",
    "2026-W10-3T05:06:07Z",
    "yesterday",
    "",
    0,
    1.5,
    True,
    [],
)
TEXTS: tuple[Any, ...] = (None, "", "plain", "é ☃ 𝄞", "x" * 500, "2026-03-04T05:06:07Z", 7, True)
NUMBERS: tuple[Any, ...] = (
    None,
    0,
    -1,
    2**31 - 1,
    2**53 + 1,
    -(2**63),
    10**20,
    0.1,
    -0.0,
    1e308,
    123456789.123456,
    "12",
    False,
)
BOOLEANS: tuple[Any, ...] = (None, True, False, 0, 1, "true")


def _options(attr: AttributeSchema) -> tuple[Any, ...]:
    known = sorted(attr.options)[:3]
    return (None, *known, 999_999_999, -1, "1", True, 1.0)


def _wire_values(attr: AttributeSchema) -> tuple[Any, ...]:
    kind = attr.type
    if kind is T.DATETIME:
        return WIRE_DATES
    if kind in (T.STRING, T.MEMO, T.ENTITYNAME, T.UNIQUEIDENTIFIER):
        return TEXTS
    if kind in (T.INTEGER, T.BIGINT, T.DECIMAL, T.DOUBLE, T.MONEY):
        return NUMBERS
    if kind is T.BOOLEAN:
        return BOOLEANS
    if kind in (T.PICKLIST, T.STATE, T.STATUS):
        return _options(attr)
    return TEXTS


LOOKUP_WIRE: tuple[tuple[Any, Any], ...] = (
    (None, None),
    (RECORD_ID.upper(), "systemuser"),
    (RECORD_ID, "team"),
    (RECORD_ID, "account"),
    (RECORD_ID, "contact"),
    (RECORD_ID, None),  # no annotation: the single target, if there is one
    (RECORD_ID, ""),
)


def _rows(schema: EntitySchema, mapping: EntityMapping) -> Iterator[dict[str, Any]]:
    """Wire rows of ``schema`` with every selected column: one row per column and sample value
    of its type (the other columns null, so an error cannot hide the rest), then rows where
    every column cycles through its samples at once."""
    attrs = [schema.attributes[a] for a in mapping.attributes if a in schema.attributes]
    lookups = [a for a in attrs if a.type in (T.LOOKUP, T.CUSTOMER, T.OWNER)]
    plain = [a for a in attrs if a not in lookups and a.logical_name != schema.primary_id]

    def row(
        n: int, plain_at: dict[str, Any], lookup_at: dict[str, tuple[Any, Any]]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": f'W/"{n}"', schema.primary_id: RECORD_ID}
        for attr in plain:
            out[attr.logical_name] = plain_at.get(attr.logical_name)
        for attr in lookups:
            value, entity = lookup_at.get(attr.logical_name, (None, None))
            key = f"_{attr.logical_name}_value"
            out[key] = value
            if entity is not None:
                out[f"{key}@{LOOKUP_ANNOTATION}"] = entity
        return out

    n = 0
    for attr in plain:
        for value in _wire_values(attr):
            n += 1
            yield row(n, {attr.logical_name: value}, {})
    for attr in lookups:
        for pair in LOOKUP_WIRE:
            n += 1
            yield row(n, {}, {attr.logical_name: pair})
    longest = max([len(LOOKUP_WIRE), *(len(_wire_values(a)) for a in plain)])
    for k in range(longest):
        n += 1
        yield row(
            n,
            {
                a.logical_name: _wire_values(a)[(k + i) % len(_wire_values(a))]
                for i, a in enumerate(plain)
            },
            {
                a.logical_name: LOOKUP_WIRE[(k + i) % len(LOOKUP_WIRE)]
                for i, a in enumerate(lookups)
            },
        )


def _convert(
    info: EntitySetInfo,
    schema: EntitySchema,
    mapping: EntityMapping,
    row: dict[str, Any],
    *,
    wire: bool,
) -> dict[str, object] | str:
    """A row's marketing values (or the error's message) the way a read converts it, with
    date-times as Dataverse's text (``wire``) or as datetimes (the path before)."""
    converter = RowConverter(info, schema, mapping.wire_dates if wire else frozenset())
    record = converter.convert(row)
    try:
        return mapping.to_marketing(record.values, record.id)
    except ValidationFailedError as exc:
        return exc.message


@pytest.fixture(scope="module")
def schemas() -> Iterator[dict[str, EntitySchema]]:
    """The emulator's schemas of the synced tables, read through the client, with custom
    columns of the types its standard person columns lack."""
    with running_org(default_config(), 0) as org:
        for entity in ("lead", "contact"):
            for name, kind in (("new_ratio", "Double"), ("new_weight", "Decimal")):
                definition = AttributeDef(name, kind, name, is_custom=True)
                org.app.state.storage.add_attribute(entity, definition)
        client = engine_client(org.base)
        try:
            yield {entity: client.entity_schema(entity) for entity in ENTITIES}
        finally:
            client.close()


def test_the_emulator_has_every_synced_column_type(schemas: dict[str, EntitySchema]) -> None:
    """The sample below covers every column type crmsync syncs, date-times on most tables."""
    types = {a.type for s in schemas.values() for a in s.attributes.values() if readable(a)}
    assert {T.DATETIME, T.BIGINT, T.DECIMAL, T.DOUBLE, T.MONEY, T.MEMO, T.PICKLIST} <= types
    assert {T.STATE, T.STATUS, T.LOOKUP, T.CUSTOMER, T.OWNER, T.UNIQUEIDENTIFIER} <= types
    assert {T.BOOLEAN, T.INTEGER, T.STRING} <= types


@pytest.mark.parametrize("entity", ENTITIES)
def test_wire_dates_convert_exactly_as_through_a_datetime(
    schemas: dict[str, EntitySchema], entity: str
) -> None:
    """Every readable column selected, every sample wire value of its type (nulls, edge and
    impossible dates, offsets, big numbers, unknown options, lookups to each table): the same
    marketing values, or the same error, with and without the datetime round trip."""
    schema = schemas[entity]
    info = EntitySetInfo(entity, schema.entity_set_name, schema.primary_id)
    selected = [name for name, attr in schema.attributes.items() if readable(attr)]
    mapping = mapping_for_selection(schema, selected)
    rows = list(_rows(schema, mapping))
    outcomes = []
    for row in rows:
        before = _convert(info, schema, mapping, row, wire=False)
        after = _convert(info, schema, mapping, row, wire=True)
        assert after == before, row
        outcomes.append(before)
    if mapping.wire_dates:
        # The sample reaches the new path's both branches: kept text and converted values.
        assert any(isinstance(o, dict) for o in outcomes)
        kept = [
            o[m.field]
            for o in outcomes
            if isinstance(o, dict)
            for m in mapping.fields
            if m.attribute in mapping.wire_dates and isinstance(o[m.field], str)
        ]
        assert "2026-03-04T05:06:07Z" in kept
        assert "2026-03-04T03:06:07Z" in kept  # +02:00 converted to UTC as before


def test_only_dataverse_utc_text_is_kept_as_it_is() -> None:
    """Text is kept only when it is a real instant in exactly the form the store writes."""
    kept = [v for v in WIRE_DATES if isinstance(v, str) and is_utc_text(v)]
    assert kept == [
        "2026-03-04T05:06:07Z",
        "1753-01-01T00:00:00Z",
        "1752-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2024-02-29T12:00:00Z",
    ]


def _stored(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every person's synced values and every baseline, keyed by Dynamics id."""
    skip = {"id", "createdAt", "updatedAt", "companyId", "salesPersonId"}
    columns = [c for c in persons.c if c.key not in skip]
    with engine.connect() as conn:
        people = conn.execute(
            select(crm_links.c.entity, crm_links.c.crm_id, *columns)
            .join(persons, persons.c.id == crm_links.c.local_id)
            .where(crm_links.c.entity.in_(("lead", "contact")))
            .order_by(crm_links.c.entity, crm_links.c.crm_id)
        ).all()
        baselines = conn.execute(
            select(
                sync_baselines.c.entity, sync_baselines.c.crm_id, sync_baselines.c["values"]
            ).order_by(sync_baselines.c.entity, sync_baselines.c.crm_id)
        ).all()
    return [tuple(r) for r in people], [tuple(r) for r in baselines]


def test_initial_sync_stores_the_same_as_through_a_datetime(
    database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An org whose date-times take the forms a read may carry (Dataverse's UTC text, edge
    years, a leap day, an offset, none) syncs into the store (SQLite and PostgreSQL) exactly
    as it did through a datetime: people's columns and baselines are equal, value for value."""
    dates = itertools.cycle(
        [
            "2026-03-04T05:06:07Z",
            "1753-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2024-02-29T12:00:00Z",
            "2026-03-04T05:06:07+02:00",
            None,
        ]
    )
    with running_org(default_config(), 12) as org:
        storage = org.app.state.storage
        for entity in ("lead", "contact"):
            definition = storage.catalog.require(entity)
            key = definition.primary_id
            ids = [r[0] for r in storage.execute(f'SELECT "{key}" FROM "{definition.table}"')]
            for row_id in ids:
                storage.update(definition, row_id, {"mkt_lastinterestingmomentdate": next(dates)})
        other = tmp_path / "through-a-datetime.db"
        reference = f"sqlite:///{other}"
        upgrade_database(reference)
        results = []
        for url, wire in ((database_url, True), (reference, False)):
            engine = open_database(url)
            client = engine_client(org.base)
            try:
                if not wire:
                    monkeypatch.setattr(EntityMapping, "wire_dates", frozenset())
                assert SyncCycle(engine, client).run().status == "ok"
                results.append(_stored(engine))
            finally:
                client.close()
                engine.dispose()
        people, baselines = results[0]
        assert people and baselines
        assert results[0] == results[1]
        kept = {p for row in people for p in row if isinstance(p, str) and "T" in p}
        assert "2026-03-04T05:06:07Z" in kept and "2026-03-04T03:06:07Z" in kept
