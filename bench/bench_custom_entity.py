"""Initial load of a custom entity against leads, in one run (issue 12 "Performance", B45).

The emulator runs as its own process (``crmsync emulator --seed N``); a custom table
``new_visit`` with a lookup to contact is created through the metadata API and filled with N
rows (each linked to a contact) by ``$batch`` creates. Then, timed the same way:

* ``lead_initial_*``: the initial read of the leads alone (one :class:`SyncCycle` over
  ``lead``), records per second end to end and per second of this process's CPU time;
* ``custom_initial_*``: the initial load of ``new_visit`` once enabled (contacts were read
  first, untimed, so each visit is linked to its person), the same figures;
* ``custom_vs_lead_rate``: the custom entity's end-to-end rate over the leads' (target: at
  least 1.0, "the same rate per record as leads").

Quick mode uses 2,000 of each; the full run 100,000.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import func, select

from bench.support import synced_org
from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.types import LookupValue, WriteRequest
from crmsync.store.tables import custom_object_rows
from crmsync.sync.custom_entities import enable
from crmsync.sync.custom_reader import CustomEntityReader
from crmsync.sync.cycle import SyncCycle

TARGET_RATE_RATIO = 1.0


def _label(text: str) -> dict[str, Any]:
    return {"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}]}


def _create_visits(client: DynamicsClient, rows: int) -> None:
    """The ``new_visit`` table (a lookup to contact, a text and a number) and ``rows`` rows."""
    root = client.service_root
    table = {
        "SchemaName": "new_Visit",
        "DisplayName": _label("Visit"),
        "DisplayCollectionName": _label("Visits"),
        "OwnershipType": "UserOwned",
        "ChangeTrackingEnabled": True,
        "Attributes": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                "SchemaName": "new_Name",
                "IsPrimaryName": True,
                "MaxLength": 100,
                "DisplayName": _label("Name"),
            },
            {
                "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                "SchemaName": "new_Note",
                "MaxLength": 200,
                "DisplayName": _label("Note"),
            },
            {
                "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
                "SchemaName": "new_Hours",
                "MinValue": 0,
                "MaxValue": 1000,
                "DisplayName": _label("Hours"),
            },
        ],
    }
    lookup = {
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": "new_contact_new_visit",
        "ReferencedEntity": "contact",
        "ReferencingEntity": "new_visit",
        "Lookup": {"SchemaName": "new_ContactId", "DisplayName": _label("Contact")},
    }
    for path, body in (("EntityDefinitions", table), ("RelationshipDefinitions", lookup)):
        client.http.post(f"{root}{path}", json=body).raise_for_status()
    client.entity_schema("new_visit")
    contacts = [r.id for r in client.iter_records("contacts", ["contactid"])]
    requests = [
        WriteRequest.create(
            "new_visit",
            str(uuid.uuid4()),
            {
                "new_name": f"Visit {n}",
                "new_note": f"Bench visit {n}",
                "new_hours": n % 100,
                "new_contactid": LookupValue(contacts[n % len(contacts)], "contact"),
            },
        )
        for n in range(rows)
    ]
    for start in range(0, len(requests), 5_000):
        results = client.write_batch(requests[start : start + 5_000])
        failed = [r for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} visits were not created: {failed[0]}")


def run(quick: bool) -> dict[str, object]:
    return measure(2_000 if quick else 100_000)


def measure(rows: int) -> dict[str, object]:
    """Seed ``rows`` leads (and contacts) and ``rows`` visits; time both initial loads."""
    figures: dict[str, object] = {"leads": rows, "custom_rows": rows}
    with synced_org(rows, batch_size=1000, initial_cycle=False) as setup:
        engine, client = setup.engine, setup.client
        _create_visits(client, rows)
        leads = SyncCycle(engine, client, entities=("lead",))
        leads.mappings()
        figures.update(_timed("lead", leads.run))
        SyncCycle(engine, client, entities=("contact",)).run()  # persons to link to
        enable(engine, client, "new_visit")
        reader = CustomEntityReader(engine, client)
        figures.update(_timed("custom", reader.run))
        with engine.connect() as conn:
            linked = conn.execute(
                select(func.count()).where(custom_object_rows.c.person_id.is_not(None))
            ).scalar_one()
        figures["custom_linked"] = int(linked)
    ratio = int(figures["custom_initial_records_per_s"]) / max(  # type: ignore[call-overload]
        1,
        int(figures["lead_initial_records_per_s"]),  # type: ignore[call-overload]
    )
    figures["custom_vs_lead_rate"] = round(ratio, 2)
    figures["target_custom_vs_lead_rate"] = TARGET_RATE_RATIO
    return figures


def _timed(prefix: str, read: Any) -> dict[str, object]:
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = read()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    reports = result if isinstance(result, list) else result.entities
    records = sum(r.records for r in reports)
    return {
        f"{prefix}_initial_records": records,
        f"{prefix}_initial_seconds": round(elapsed, 2),
        f"{prefix}_initial_records_per_s": round(records / elapsed),
        f"{prefix}_initial_records_per_engine_cpu_s": round(records / max(cpu, 1e-6)),
    }
