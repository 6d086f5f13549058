"""UpsertMultiple: create or update many rows in one request, in one transaction.

Microsoft Learn, "Use bulk operation messages" (https://learn.microsoft.com/power-apps/developer/
data-platform/bulk-operations) and "UpsertMultiple Action" (Web API action reference): each
target carries ``@odata.type`` and names its row with ``@odata.id``; the response is
``UpsertMultipleResponse``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_plane_support import API, Emulator, running_emulator

LEAD = "Microsoft.Dynamics.CRM.lead"
NEW_ID = "5f0c4b1e-6a7d-4e2f-9b3c-1d2e3f4a5b6c"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def test_upsert_multiple_updates_existing_and_creates_missing_rows(emu: Emulator) -> None:
    """One existing lead is updated, one named but missing is created with its id, one new."""
    existing = emu.create("leads", {"lastname": "Old", "jobtitle": "Before"})
    response = emu.request(
        "POST",
        "leads/Microsoft.Dynamics.CRM.UpsertMultiple",
        {
            "Targets": [
                {"@odata.type": LEAD, "@odata.id": f"leads({existing})", "jobtitle": "After"},
                {"@odata.type": LEAD, "@odata.id": f"leads({NEW_ID})", "lastname": "Named"},
                {"@odata.type": LEAD, "lastname": "Fresh"},
            ]
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (
        body["@odata.context"] == f"{API}/$metadata#Microsoft.Dynamics.CRM.UpsertMultipleResponse"
    )
    assert body["Ids"][:2] == [existing, NEW_ID] and len(body["Ids"]) == 3
    assert emu.request("GET", f"leads({existing})/jobtitle").json()["value"] == "After"
    assert emu.request("GET", f"leads({existing})/lastname").json()["value"] == "Old"
    assert emu.request("GET", f"leads({NEW_ID})/lastname").json()["value"] == "Named"


def test_upsert_multiple_is_one_transaction(emu: Emulator) -> None:
    """A bad target rolls back the targets before it; nothing is written."""
    existing = emu.create("leads", {"lastname": "Kept"})
    response = emu.request(
        "POST",
        "leads/Microsoft.Dynamics.CRM.UpsertMultiple",
        {
            "Targets": [
                {"@odata.type": LEAD, "@odata.id": f"leads({existing})", "lastname": "Changed"},
                {"@odata.type": LEAD, "lastname": "x" * 51},
            ]
        },
    )
    assert response.status_code == 400
    assert emu.request("GET", f"leads({existing})/lastname").json()["value"] == "Kept"


def test_upsert_multiple_refuses_a_reference_to_another_table(emu: Emulator) -> None:
    """@odata.id naming a contact in a lead UpsertMultiple: 400, nothing created."""
    response = emu.request(
        "POST",
        "leads/Microsoft.Dynamics.CRM.UpsertMultiple",
        {"Targets": [{"@odata.type": LEAD, "@odata.id": f"contacts({NEW_ID})", "lastname": "X"}]},
    )
    assert response.status_code == 400
    assert emu.request("GET", f"leads({NEW_ID})").status_code == 404
