"""Creating a custom table with more columns than its primary name in one request.

Microsoft Learn, "Create and update table definitions using the Web API"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-entity-
definitions-using-web-api): the ``Attributes`` of the new ``EntityMetadata`` are created with
the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from data_plane_support import Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _label(text: str) -> dict[str, Any]:
    return {"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}]}


def _table(*extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "SchemaName": "new_Project",
        "DisplayName": _label("Project"),
        "DisplayCollectionName": _label("Projects"),
        "OwnershipType": "UserOwned",
        "Attributes": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                "SchemaName": "new_Name",
                "IsPrimaryName": True,
                "MaxLength": 100,
                "DisplayName": _label("Name"),
            },
            *extra,
        ],
    }


def test_every_listed_column_is_created_with_the_table(emu: Emulator) -> None:
    """An Integer and a Memo column listed beside the primary name exist and take values."""
    created = emu.request(
        "POST",
        "EntityDefinitions",
        _table(
            {
                "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
                "SchemaName": "new_Budget",
                "MinValue": 0,
                "MaxValue": 1000,
                "DisplayName": _label("Budget"),
            },
            {
                "@odata.type": "Microsoft.Dynamics.CRM.MemoAttributeMetadata",
                "SchemaName": "new_Notes",
                "MaxLength": 2000,
                "DisplayName": _label("Notes"),
            },
        ),
    )
    assert created.status_code == 204, created.text
    row = emu.create("new_projects", {"new_name": "Alpha", "new_budget": 10, "new_notes": "n"})
    body = emu.request("GET", f"new_projects({row})?$select=new_budget,new_notes").json()
    assert (body["new_budget"], body["new_notes"]) == (10, "n")
    too_big = emu.request("POST", "new_projects", {"new_name": "B", "new_budget": 5000})
    assert too_big.status_code == 400


def test_a_bad_extra_column_creates_nothing(emu: Emulator) -> None:
    """A column without a customization prefix: 400 and no table."""
    refused = emu.request(
        "POST",
        "EntityDefinitions",
        _table(
            {
                "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
                "SchemaName": "Budget",
                "DisplayName": _label("Budget"),
            }
        ),
    )
    assert refused.status_code == 400
    assert emu.request("GET", "EntityDefinitions(LogicalName='new_project')").status_code == 404
