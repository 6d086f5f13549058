"""RetrieveMetadataChanges (spec §9, "Query schema definitions and detect changes"): table
definitions by query, only what changed after a ClientVersionStamp, deleted MetadataIds, and
ExpiredVersionStamp for a stamp too old or from before the tokens were expired."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from data_plane_support import Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _query(*names: str, attributes: bool = False) -> dict[str, Any]:
    query: dict[str, Any] = {
        "Criteria": {
            "FilterOperator": "And",
            "Conditions": [
                {
                    "PropertyName": "LogicalName",
                    "ConditionOperator": "In",
                    "Value": {"Type": "System.String[]", "Value": json.dumps(list(names))},
                }
            ],
        },
        "Properties": {"AllProperties": False, "PropertyNames": ["LogicalName", "SchemaName"]},
    }
    if attributes:
        query["AttributeQuery"] = {
            "Properties": {"AllProperties": False, "PropertyNames": ["LogicalName", "MaxLength"]}
        }
    return query


def _changes(emu: Emulator, query: dict[str, Any], stamp: str | None = None) -> Any:
    url = "RetrieveMetadataChanges(Query=@q"
    args = [f"@q={quote(json.dumps(query))}"]
    if stamp is not None:
        url += ",ClientVersionStamp=@s,DeletedMetadataFilters=@d"
        args.append(f"@s={quote(chr(39) + stamp + chr(39))}")
        args.append(
            "@d=" + quote("Microsoft.Dynamics.CRM.DeletedMetadataFilters'Entity,Attribute'")
        )
    return emu.request("GET", f"{url})?{'&'.join(args)}")


def _add_column(emu: Emulator, entity: str, schema_name: str) -> None:
    response = emu.request(
        "POST",
        f"EntityDefinitions(LogicalName='{entity}')/Attributes",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": schema_name,
        },
    )
    assert response.status_code == 204, response.text


def test_query_returns_the_matching_tables_with_the_asked_properties(emu: Emulator) -> None:
    """Criteria pick tables, Properties pick what comes back; a stamp to ask with next time."""
    response = _changes(emu, _query("lead", "contact", attributes=True))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith(
        "#Microsoft.Dynamics.CRM.RetrieveMetadataChangesResponse"
    )
    names = sorted(row["LogicalName"] for row in body["EntityMetadata"])
    assert names == ["contact", "lead"]
    lead = next(row for row in body["EntityMetadata"] if row["LogicalName"] == "lead")
    assert lead["SchemaName"] == "Lead" and "EntitySetName" not in lead
    email = next(a for a in lead["Attributes"] if a["LogicalName"] == "emailaddress1")
    assert email["MaxLength"] == 100 and "IsSecured" not in email
    assert body["ServerVersionStamp"]


def test_with_a_stamp_only_changed_tables_and_deleted_columns_come_back(emu: Emulator) -> None:
    """Nothing changed: no table; a column added to lead: lead only; a column deleted: its
    MetadataId in DeletedMetadata."""
    first = _changes(emu, _query("lead", "contact")).json()
    quiet = _changes(emu, _query("lead", "contact"), first["ServerVersionStamp"]).json()
    assert quiet["EntityMetadata"] == []
    _add_column(emu, "lead", "new_Flag")
    after_add = _changes(emu, _query("lead", "contact"), quiet["ServerVersionStamp"]).json()
    assert [row["LogicalName"] for row in after_add["EntityMetadata"]] == ["lead"]
    column = emu.request(
        "GET", "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='new_flag')"
    ).json()
    deleted = emu.request(
        "DELETE", "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='new_flag')"
    )
    assert deleted.status_code == 204, deleted.text
    after_delete = _changes(emu, _query("lead"), after_add["ServerVersionStamp"]).json()
    collection = after_delete["DeletedMetadata"]
    assert collection["Keys"] == ["Attribute"]
    assert collection["Values"] == [[column["MetadataId"]]]


def test_a_stamp_older_than_ninety_days_has_expired(emu: Emulator) -> None:
    """ExpireSubscriptionsInDays (90): an older stamp is refused with ExpiredVersionStamp."""
    stamp = _changes(emu, _query("lead")).json()["ServerVersionStamp"]
    emu.clock.advance(days=89)
    assert _changes(emu, _query("lead"), stamp).status_code == 200
    emu.clock.advance(days=2)
    refused = _changes(emu, _query("lead"), stamp)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "0x80044352"
    assert "Please perform a full sync" in error["message"]


def test_expiring_the_tokens_expires_version_stamps(emu: Emulator) -> None:
    """``/_emulator/expire-delta-tokens`` makes earlier stamps stale as well; a garbled stamp
    is stale too."""
    stamp = _changes(emu, _query("lead")).json()["ServerVersionStamp"]
    emu.runtime.delta_epoch += 1
    assert _changes(emu, _query("lead"), stamp).json()["error"]["code"] == "0x80044352"
    assert _changes(emu, _query("lead"), "garbage").json()["error"]["code"] == "0x80044352"


def test_bad_query_is_a_clear_400(emu: Emulator) -> None:
    """A query naming an unknown property or operator is refused, not a 500."""
    query = _query("lead")
    query["Criteria"]["Conditions"][0]["PropertyName"] = "NoSuchProperty"
    response = _changes(emu, query)
    assert response.status_code == 400
    assert "NoSuchProperty" in response.json()["error"]["message"]
    response = emu.request("GET", "RetrieveMetadataChanges(Query=@q)?@q=not-json")
    assert response.status_code == 400
