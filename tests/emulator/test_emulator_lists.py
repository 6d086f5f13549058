"""Marketing lists and their members through the list's N:N associations (issue 3 entities)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_plane_support import API, Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _members(emu: Emulator, list_id: str) -> list[str]:
    response = emu.request("GET", f"lists({list_id})/listlead_association?$select=lastname")
    assert response.status_code == 200, response.text
    return sorted(row["lastname"] for row in response.json()["value"])


def test_associate_list_and_disassociate_leads(emu: Emulator) -> None:
    """POST .../listlead_association/$ref adds; GET lists members; DELETE ...(<id>)/$ref removes."""
    marketing = emu.create("lists", {"listname": "Webinar", "createdfromcode": 4})
    ada = emu.create("leads", {"lastname": "Ada"})
    bob = emu.create("leads", {"lastname": "Bob"})
    for lead in (ada, bob, ada):
        added = emu.request(
            "POST",
            f"lists({marketing})/listlead_association/$ref",
            {"@odata.id": f"{API}/leads({lead})"},
        )
        assert added.status_code == 204, added.text
    assert _members(emu, marketing) == ["Ada", "Bob"]
    assert emu.request("GET", f"lists({marketing})?$select=membercount").json()["membercount"] == 2
    rows = emu.request(
        "GET", f"listmembers?$select=entityid&$filter=_listid_value eq {marketing}"
    ).json()
    assert {row["_entityid_value"] for row in rows["value"]} == {ada, bob}
    removed = emu.request("DELETE", f"lists({marketing})/listlead_association({ada})/$ref")
    assert removed.status_code == 204
    assert _members(emu, marketing) == ["Bob"]
    assert (
        emu.request("DELETE", f"lists({marketing})/listlead_association({ada})/$ref").status_code
        == 404
    )


def test_members_must_match_the_list_type_and_exist(emu: Emulator) -> None:
    """A contact cannot join a lead list; a missing lead is a 404."""
    marketing = emu.create("lists", {"listname": "Leads only", "createdfromcode": 4})
    contact = emu.create("contacts", {"lastname": "C"})
    wrong = emu.request(
        "POST",
        f"lists({marketing})/listcontact_association/$ref",
        {"@odata.id": f"contacts({contact})"},
    )
    assert wrong.status_code == 400
    missing = emu.request(
        "POST",
        f"lists({marketing})/listlead_association/$ref",
        {"@odata.id": "leads(00000000-0000-0000-0000-0000000000aa)"},
    )
    assert missing.status_code == 404


def test_add_member_list_action_and_delete_cascade(emu: Emulator) -> None:
    """AddMemberList returns the membership id; deleting the lead removes its membership."""
    marketing = emu.create("lists", {"listname": "Event", "createdfromcode": 4})
    lead = emu.create("leads", {"lastname": "Cascade"})
    response = emu.request("POST", "AddMemberList", {"ListId": marketing, "EntityId": lead})
    assert response.status_code == 200
    member = response.json()["Id"]
    assert (
        emu.request("GET", f"listmembers({member})?$select=listid").json()["_listid_value"]
        == marketing
    )
    assert emu.request("DELETE", f"leads({lead})").status_code == 204
    assert emu.request("GET", f"listmembers({member})").status_code == 404
    assert _members(emu, marketing) == []


def test_member_collection_pages_with_a_link_to_the_association(emu: Emulator) -> None:
    """Navigation collections page like entity sets; the nextLink stays on the association."""
    marketing = emu.create("lists", {"listname": "Big", "createdfromcode": 4})
    for index in range(5):
        lead = emu.create("leads", {"lastname": f"M{index}"})
        emu.request(
            "POST", f"lists({marketing})/listlead_association/$ref", {"@odata.id": f"leads({lead})"}
        )
    emu.create("leads", {"lastname": "Outsider"})
    url = f"{API}/lists({marketing})/listlead_association?$select=lastname"
    names: list[str] = []
    while url:
        body = emu.request("GET", url, headers={"Prefer": "odata.maxpagesize=2"}).json()
        names += [row["lastname"] for row in body["value"]]
        url = body.get("@odata.nextLink")
        assert url is None or url.startswith(f"{API}/lists({marketing})/listlead_association?")
    assert sorted(names) == [f"M{index}" for index in range(5)]
