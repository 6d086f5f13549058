"""Merge throughput: ``merge_record`` over many records of 40 synced fields, and planning
throughput: ``plan_page`` over pages of default-mapped lead changes (conversion included).

Each record has a baseline and both sides' values; about one record in ten has a Dynamics-side
edit, one in ten a marketing-side edit, and one in a hundred a collision, which is a busy
cycle's mix. Only the merge is timed; building the inputs is not.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from crmsync.dynamics.types import (
    AttributeSchema,
    AttributeType,
    CrmChange,
    CrmRecord,
    CrmValue,
    EntitySchema,
    LookupValue,
)
from crmsync.sync.mapping import DEFAULT_MAPPING, default_mapping
from crmsync.sync.merge import merge_record
from crmsync.sync.plan import LinkState, LocalRecord, plan_page
from crmsync.sync.policy import policy_for

FIELDS = tuple(f"field{i:02d}" for i in range(40))
TARGET_MERGES_PER_SECOND = 20_000


def _copy(value: object) -> object:
    if isinstance(value, str):
        return (value + ".")[:-1]
    if isinstance(value, int) and not isinstance(value, bool):
        return int(str(value))
    return value


Record = tuple[dict[str, object], dict[str, object], dict[str, object]]


def _records(count: int, seed: int = 7) -> list[Record]:
    rng = random.Random(seed)
    records: list[Record] = []
    for index in range(count):
        baseline: dict[str, object] = {}
        for position, name in enumerate(FIELDS):
            kind = position % 4
            if kind == 0:
                baseline[name] = f"value {index} {position}"
            elif kind == 1:
                baseline[name] = index * position
            elif kind == 2:
                baseline[name] = bool(index % 2)
            else:
                baseline[name] = None
        # Each side holds its own equal objects, as values read from Dynamics and the database do.
        crm = {name: _copy(value) for name, value in baseline.items()}
        marketing = {name: _copy(value) for name, value in baseline.items()}
        roll = rng.random()
        name = FIELDS[rng.randrange(len(FIELDS))]
        if roll < 0.1:
            crm[name] = "edited in Dynamics"
        elif roll < 0.2:
            marketing[name] = "edited in marketing"
        elif roll < 0.21:
            crm[name] = "Dynamics"
            marketing[name] = "marketing"
        records.append((baseline, crm, marketing))
    return records


def run(quick: bool) -> dict[str, object]:
    """Time the merge of 100,000 records × 40 fields (5,000 when quick), with and without
    a baseline."""
    count = 5_000 if quick else 100_000
    records = _records(count)
    policy = policy_for("lead")
    writes = collisions = 0
    started = time.perf_counter()
    for baseline, crm, marketing in records:
        result = merge_record(baseline, crm, marketing, policy, FIELDS)
        writes += len(result.crm_writes) + len(result.marketing_writes)
        collisions += len(result.collisions)
    elapsed = time.perf_counter() - started
    rate = count / elapsed if elapsed else float("inf")
    # The initial sync's path: no baseline yet, Dynamics values win.
    started = time.perf_counter()
    for _, crm, marketing in records:
        merge_record(None, crm, marketing, policy, FIELDS)
    first_link_elapsed = time.perf_counter() - started
    figures: dict[str, object] = {
        "records": count,
        "fields_per_record": len(FIELDS),
        "merge_seconds": round(elapsed, 3),
        "merges_per_second": round(rate),
        "field_merges_per_second": round(rate * len(FIELDS)),
        "first_link_merges_per_second": round(count / first_link_elapsed),
        "writes": writes,
        "collisions": collisions,
        "target_merges_per_second": TARGET_MERGES_PER_SECOND,
        "meets_target": rate >= TARGET_MERGES_PER_SECOND,
    }
    figures.update(run_plan(quick))
    return figures


def _lead_schema() -> EntitySchema:
    """Every default lead column, typed as Dynamics types them (strings unless noted)."""
    types = {
        "leadid": AttributeType.UNIQUEIDENTIFIER,
        "createdon": AttributeType.DATETIME,
        "mkt_lastinterestingmomentdate": AttributeType.DATETIME,
        "ownerid": AttributeType.OWNER,
        "donotphone": AttributeType.BOOLEAN,
        "donotbulkemail": AttributeType.BOOLEAN,
        "donotemail": AttributeType.BOOLEAN,
        "donotfax": AttributeType.BOOLEAN,
        "donotsendmm": AttributeType.BOOLEAN,
        "statecode": AttributeType.STATE,
        "statuscode": AttributeType.STATUS,
        "leadsourcecode": AttributeType.PICKLIST,
        "leadqualitycode": AttributeType.PICKLIST,
        "preferredcontactmethodcode": AttributeType.PICKLIST,
        "revenue": AttributeType.MONEY,
        "mkt_relativescore": AttributeType.INTEGER,
        "mkt_priority": AttributeType.INTEGER,
        "mkt_urgency": AttributeType.INTEGER,
    }
    attributes = {}
    for attribute, _, _ in DEFAULT_MAPPING["lead"]:
        kind = types.get(attribute, AttributeType.STRING)
        attributes[attribute] = AttributeSchema(
            attribute,
            kind,
            max_length=100 if kind is AttributeType.STRING else None,
            options={1: "One", 2: "Two", 3: "Three"},
            targets=("systemuser", "team"),
        )
    return EntitySchema("lead", "leads", "leadid", "fullname", True, False, attributes)


def _lead_row(index: int, schema: EntitySchema) -> dict[str, CrmValue]:
    row: dict[str, CrmValue] = {}
    for name, attr in schema.attributes.items():
        kind = attr.type
        if kind is AttributeType.UNIQUEIDENTIFIER:
            row[name] = f"00000000-0000-4000-8000-{index:012d}"
        elif kind is AttributeType.DATETIME:
            row[name] = datetime(2026, 1, 1, tzinfo=UTC)
        elif kind is AttributeType.OWNER:
            row[name] = LookupValue("00000000-0000-4000-8000-000000000001", "systemuser")
        elif kind is AttributeType.BOOLEAN:
            row[name] = index % 2 == 0
        elif kind in (AttributeType.STATE, AttributeType.STATUS, AttributeType.PICKLIST):
            row[name] = 1 + index % 3
        elif kind in (AttributeType.MONEY, AttributeType.INTEGER):
            row[name] = index
        else:
            row[name] = f"{name} {index}"
    return row


def run_plan(quick: bool) -> dict[str, object]:
    """Plan pages of 5,000 lead changes: half new records, half linked with one edit each."""
    schema = _lead_schema()
    mapping = default_mapping(schema)
    count = 5_000 if quick else 50_000
    changes = [
        CrmChange(CrmRecord("lead", str(i), _lead_row(i, schema), etag=str(i)))
        for i in range(count)
    ]
    links: dict[str, LinkState] = {}
    for i in range(0, count, 2):
        values = mapping.to_marketing(changes[i].record.values)
        edited = dict(values, city="Edited")
        links[str(i)] = LinkState(LocalRecord(i, edited, "Lead"), values)
    started = time.perf_counter()
    creates = updates = 0
    for first in range(0, count, 5_000):
        plan = plan_page(mapping, changes[first : first + 5_000], links)
        creates += len(plan.creates)
        updates += len(plan.updates)
    elapsed = time.perf_counter() - started
    return {
        "plan_records": count,
        "plan_fields_per_record": len(mapping.fields),
        "plan_records_per_second": round(count / elapsed),
        "plan_creates": creates,
        "plan_updates": updates,
    }
