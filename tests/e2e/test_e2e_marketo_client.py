"""Acceptance (issue 2 §5): the unmodified ``marketorestpython`` client against ``crmsync serve``.

The server runs as a subprocess on 127.0.0.1 (a free port), on a SQLite database migrated with
``crmsync db upgrade``, with an API client made by ``crmsync api-client create --json``. The
client's host is pointed at it as spec marketo-rest §9.5 describes; every step checks the
values that come back, not just success flags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from marketo_server import RunningServer, marketo_client, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("e2e-marketo")) as running:
        yield running


def _by_id(items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {item["id"]: item for item in items}


def test_marketorestpython_drives_crmsync_serve(server: RunningServer) -> None:
    """Create, upsert, lookups, update, lists, describe, activities, lead changes, delete."""
    mc = marketo_client(server)
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")

    created = mc.execute(
        method="create_update_leads",
        leads=[
            {"email": "ada@example.com", "firstName": "Ada", "lastName": "Byron"},
            {"email": "alan@example.com", "firstName": "Alan", "lastName": "Turing"},
            {"email": "bad@example.com", "shoeSize": 44},
        ],
        action="createOnly",
        lookupField="email",
    )
    assert [item["status"] for item in created] == ["created", "created", "skipped"]
    assert created[2]["reasons"] == [{"code": "1006", "message": "Field 'shoeSize' not found"}]
    ada_id, alan_id = created[0]["id"], created[1]["id"]

    upserted = mc.execute(
        method="create_update_leads",
        leads=[
            {"email": "ADA@example.com", "lastName": "Lovelace", "title": "Countess"},
            {"email": "grace@example.com", "firstName": "Grace", "lastName": "Hopper"},
        ],
        action="createOrUpdate",
        lookupField="email",
        asyncProcessing="false",
        partitionName="Default",
    )
    assert upserted[0] == {"id": ada_id, "status": "updated"}
    assert upserted[1]["status"] == "created"
    grace_id = upserted[1]["id"]

    found = mc.execute(
        method="get_multiple_leads_by_filter_type",
        filterType="email",
        filterValues=["ada@example.com", "grace@example.com", "nobody@example.com"],
        fields=["email", "firstName", "lastName", "title"],
    )
    assert _by_id(found) == {
        ada_id: {
            "id": ada_id,
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "title": "Countess",
        },
        grace_id: {
            "id": grace_id,
            "email": "grace@example.com",
            "firstName": "Grace",
            "lastName": "Hopper",
            "title": None,
        },
    }
    one = mc.execute(method="get_lead_by_id", id=alan_id, fields=["email", "lastName"])
    assert one == [{"id": alan_id, "email": "alan@example.com", "lastName": "Turing"}]

    updated = mc.execute(
        method="create_update_leads",
        leads=[{"id": alan_id, "lastName": "Mathison Turing"}],
        action="updateOnly",
        lookupField="id",
    )
    assert updated == [{"id": alan_id, "status": "updated"}]
    with pytest.raises(Exception) as unknown_field:
        mc.execute(method="get_lead_by_id", id=alan_id, fields=["shoeSize"])
    assert unknown_field.value.args[0]["code"] == "1006"

    described = mc.execute(method="describe")
    email_field = next(f for f in described if f["rest"]["name"] == "email")
    assert (email_field["dataType"], email_field["length"]) == ("email", 255)
    assert mc.execute(method="describe2")[0]["name"] == "API Lead"

    new_list = mc.execute(method="create_list", name="Newsletter", folderId=1, folderType="Folder")
    list_id = new_list[0]["id"]
    assert mc.execute(method="get_list_by_id", id=list_id)[0]["name"] == "Newsletter"
    assert mc.execute(method="get_list_by_name", name="Newsletter")[0]["id"] == list_id
    assert mc.execute(method="get_multiple_lists", id=[list_id])[0]["name"] == "Newsletter"
    assert [item["id"] for item in mc.execute(method="browse_lists", maxReturn=1)] == [list_id]
    added = mc.execute(method="add_leads_to_list", listId=list_id, id=[ada_id, grace_id, 999999])
    assert [(item["id"], item["status"]) for item in added] == [
        (ada_id, "added"),
        (grace_id, "added"),
        (999999, "skipped"),
    ]
    membership = mc.execute(method="member_of_list", listId=list_id, id=[ada_id, alan_id])
    assert [item["status"] for item in membership] == ["memberof", "notmemberof"]
    members = mc.execute(
        method="get_multiple_leads_by_list_id", listId=list_id, fields=["email"], batchSize=1
    )
    assert sorted(item["email"] for item in members) == ["ada@example.com", "grace@example.com"]
    removed = mc.execute(method="remove_leads_from_list", listId=list_id, id=[grace_id])
    assert removed == [{"id": grace_id, "status": "removed"}]

    types = {item["id"]: item["name"] for item in mc.execute(method="get_activity_types")}
    assert types[12] == "New Lead" and types[13] == "Change Data Value"
    activities = mc.execute(
        method="get_lead_activities",
        activityTypeIds=["12", "24", "25"],
        sinceDatetime=since,
        leadIds=[ada_id, grace_id],
    )
    seen = sorted((a["leadId"], a["activityTypeId"]) for a in activities)
    assert seen == sorted(
        [(ada_id, 12), (grace_id, 12), (ada_id, 24), (grace_id, 24), (grace_id, 25)]
    )
    assert all(a["activityDate"].endswith("Z") for a in activities)
    changes = mc.execute(method="get_lead_changes", fields=["lastName"], sinceDatetime=since)
    last_names = [
        (change["leadId"], field["oldValue"], field["newValue"])
        for change in changes
        if change["activityTypeId"] == 13
        for field in change["fields"]
    ]
    assert (ada_id, "Byron", "Lovelace") in last_names
    assert (alan_id, "Turing", "Mathison Turing") in last_names

    deleted = mc.execute(method="delete_lead", id=[grace_id, 999999])
    assert deleted[0] == {"id": grace_id, "status": "deleted"}
    assert deleted[1]["reasons"][0]["code"] == "1004"
    assert mc.execute(method="get_lead_by_id", id=grace_id) == []
    gone = mc.execute(method="get_deleted_leads", sinceDatetime=since)
    assert [(item["leadId"], item["activityTypeId"]) for item in gone] == [(grace_id, 37)]
    assert gone[0]["primaryAttributeValue"] == "Grace Hopper"


def test_marketorestpython_sees_bad_credentials_as_an_error(server: RunningServer) -> None:
    """Spec §2.1: a 401 ``invalid_client`` reply makes the client raise with its description."""
    mc = marketo_client(server, secret="wrong-secret")
    with pytest.raises(Exception, match="Bad client credentials"):
        mc.execute(method="describe")
