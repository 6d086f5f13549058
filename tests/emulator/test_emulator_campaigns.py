"""The tables campaigns need: campaign, list (marketing list), listmember and task.

Microsoft Learn: the campaign, list, listmember and task table references
(https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/list ...),
and the Web API actions "AddMemberList", "AddListMembersList" and "RemoveMemberList"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/
addlistmemberslist): unbound actions taking ListId and EntityId / MemberIds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_plane_support import Emulator, running_emulator

from crmsync.emulator.seed import CAMPAIGNS, seed_dataset


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _lead_list(emu: Emulator, name: str = "Webinar registrants") -> str:
    return emu.create("lists", {"listname": name, "createdfromcode": 4, "type": False})


def _member_ids(emu: Emulator, list_id: str) -> set[str]:
    response = emu.request("GET", f"lists({list_id})/listlead_association?$select=leadid")
    assert response.status_code == 200, response.text
    return {row["leadid"] for row in response.json()["value"]}


def test_the_demo_seed_has_active_campaigns(emu: Emulator) -> None:
    """Seeding leads also creates the demo campaigns, three launched, all in state Active."""
    seed_dataset(emu.storage, 20, seed=5, acting_user=emu.app_user.systemuserid)
    response = emu.request(
        "GET", "campaigns?$select=name,codename,statecode,statuscode&$orderby=codename"
    )
    assert response.status_code == 200, response.text
    rows = response.json()["value"]
    assert [row["name"] for row in rows] == [c[0] for c in CAMPAIGNS]
    assert all(row["statecode"] == 0 for row in rows)
    assert sum(1 for row in rows if row["statuscode"] == 2) == 3


def test_no_leads_no_campaigns(emu: Emulator) -> None:
    """An empty seed creates no campaigns either."""
    seed_dataset(emu.storage, 0, seed=5, acting_user=emu.app_user.systemuserid)
    assert emu.request("GET", "campaigns").json()["value"] == []


def test_add_list_members_list_adds_many_and_keeps_the_count(emu: Emulator) -> None:
    """AddListMembersList -> 204; members listed, membercount follows, repeats change nothing."""
    list_id = _lead_list(emu)
    leads = [emu.create("leads", {"lastname": f"Reg {i}"}) for i in range(3)]
    for _ in range(2):
        response = emu.request(
            "POST", "AddListMembersList", {"ListId": list_id, "MemberIds": leads}
        )
        assert response.status_code == 204, response.text
    assert _member_ids(emu, list_id) == set(leads)
    count = emu.request("GET", f"lists({list_id})?$select=membercount").json()["membercount"]
    assert count == 3


def test_add_list_members_list_is_all_or_nothing(emu: Emulator) -> None:
    """An id that names no lead: 404 and none of the ids is added; a non-GUID: 400."""
    list_id = _lead_list(emu)
    lead = emu.create("leads", {"lastname": "Fine"})
    missing = "0b6c7d8e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
    response = emu.request(
        "POST",
        "Microsoft.Dynamics.CRM.AddListMembersList",
        {"ListId": list_id, "MemberIds": [lead, missing]},
    )
    assert response.status_code == 404
    assert _member_ids(emu, list_id) == set()
    bad = emu.request("POST", "AddListMembersList", {"ListId": list_id, "MemberIds": ["x"]})
    assert bad.status_code == 400


def test_remove_member_list(emu: Emulator) -> None:
    """RemoveMemberList -> 204 and the member is gone; removing a non-member is a 404."""
    list_id = _lead_list(emu)
    lead = emu.create("leads", {"lastname": "Leaving"})
    added = emu.request("POST", "AddMemberList", {"ListId": list_id, "EntityId": lead})
    assert added.status_code == 200, added.text
    removed = emu.request("POST", "RemoveMemberList", {"ListId": list_id, "EntityId": lead})
    assert removed.status_code == 204, removed.text
    assert _member_ids(emu, list_id) == set()
    again = emu.request("POST", "RemoveMemberList", {"ListId": list_id, "EntityId": lead})
    assert again.status_code == 404
    assert emu.request("GET", "RemoveMemberList").status_code == 405


def test_a_task_regarding_a_lead(emu: Emulator) -> None:
    """task: subject, description, scheduledend, regardingobjectid to a lead, statuscode."""
    lead = emu.create("leads", {"lastname": "Follow"})
    task = emu.create(
        "tasks",
        {
            "subject": "Call back",
            "description": "Asked for pricing.",
            "scheduledend": "2026-12-24T10:00:00Z",
            "regardingobjectid_lead_task@odata.bind": f"/leads({lead})",
        },
    )
    body = emu.request(
        "GET",
        f"tasks({task})?$select=subject,scheduledend,_regardingobjectid_value,statecode,statuscode",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()
    assert body["_regardingobjectid_value"] == lead
    assert body["_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "lead"
    assert body["scheduledend"] == "2026-12-24T10:00:00Z"
    assert (body["statecode"], body["statuscode"]) == (0, 2)
    done = emu.request("PATCH", f"tasks({task})", {"statecode": 1, "statuscode": 5})
    assert done.status_code == 204, done.text
