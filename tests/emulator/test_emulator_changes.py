"""Change tracking exactly as spec §4: delta links, tombstones, paging, rejected options, expiry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from data_plane_support import API, Emulator, running_emulator

TRACK = {"Prefer": "odata.track-changes"}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _initial(
    emu: Emulator, select: str = "name,accountnumber", page: int | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Read a full initial load, following nextLinks; returns the rows and the deltaLink."""
    prefer = "odata.track-changes" + (f",odata.maxpagesize={page}" if page else "")
    url = f"{API}/accounts?$select={select}"
    rows: list[dict[str, Any]] = []
    while True:
        response = emu.request("GET", url, headers={"Prefer": prefer})
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["value"]
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        return rows, body["@odata.deltaLink"]


def test_initial_read_has_delta_link_and_preference_applied(emu: Emulator) -> None:
    """§4: initial request -> 200, Preference-Applied: odata.track-changes, @odata.deltaLink."""
    emu.create("accounts", {"name": "Monte Orton", "telephone1": "555000"})
    response = emu.request(
        "GET", "accounts?$select=name,accountnumber,telephone1,fax", headers=TRACK
    )
    assert response.status_code == 200
    assert "odata.track-changes" in response.headers["Preference-Applied"]
    body = response.json()
    assert body["@odata.context"] == f"{API}/$metadata#accounts(name,accountnumber,telephone1,fax)"
    assert body["@odata.deltaLink"].startswith(
        f"{API}/accounts?$select=name,accountnumber,telephone1,fax&$deltatoken="
    )
    assert body["value"][0]["name"] == "Monte Orton"
    assert body["value"][0]["@odata.etag"].startswith('W/"')


def test_create_update_delete_between_two_delta_reads(emu: Emulator) -> None:
    """§4: changed and new rows look alike (by version), then $deletedEntity tombstones."""
    kept = emu.create("accounts", {"name": "Kept"})
    doomed = emu.create("accounts", {"name": "Doomed"})
    _, delta = _initial(emu)
    emu.request("PATCH", f"accounts({kept})", {"name": "Kept v2"})
    new = emu.create("accounts", {"name": "New"})
    emu.request("DELETE", f"accounts({doomed})")
    brief = emu.create("accounts", {"name": "Brief"})
    emu.request("DELETE", f"accounts({brief})")
    response = emu.request("GET", delta)
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{API}/$metadata#accounts(name,accountnumber)/$delta"
    values = body["value"]
    assert [v.get("name") for v in values[:2]] == ["Kept v2", "New"]
    assert values[1]["accountid"] == new
    tombstones = values[2:]
    assert tombstones == [
        {
            "@odata.context": f"{API}/$metadata#accounts/$deletedEntity",
            "id": doomed,
            "reason": "deleted",
        },
        {
            "@odata.context": f"{API}/$metadata#accounts/$deletedEntity",
            "id": brief,
            "reason": "deleted",
        },
    ]
    quiet = emu.request("GET", body["@odata.deltaLink"]).json()
    assert quiet["value"] == []
    assert "@odata.deltaLink" in quiet


def test_only_the_last_page_carries_the_delta_link(emu: Emulator) -> None:
    """§4: large initial loads page with nextLink; the deltaLink comes on the last page only."""
    for index in range(7):
        emu.create("accounts", {"name": f"A{index}"})
    rows, delta = _initial(emu, page=3)
    assert len(rows) == 7
    assert "$deltatoken=" in delta


def test_changes_during_a_paged_initial_load_come_back_in_the_next_delta(emu: Emulator) -> None:
    """§4 (powerapps-docs#3862): a row changed mid-load is sent again by the next delta read."""
    ids = [emu.create("accounts", {"name": f"A{index}"}) for index in range(4)]
    first = emu.request(
        "GET",
        "accounts?$select=name",
        headers={"Prefer": "odata.track-changes,odata.maxpagesize=2"},
    ).json()
    emu.request("PATCH", f"accounts({ids[0]})", {"name": "changed mid-load"})
    second = emu.request(
        "GET",
        first["@odata.nextLink"],
        headers={"Prefer": "odata.track-changes,odata.maxpagesize=2"},
    ).json()
    delta = emu.request("GET", second["@odata.deltaLink"]).json()
    assert [v["name"] for v in delta["value"]] == ["changed mid-load"]


def test_delta_reads_page_too(emu: Emulator) -> None:
    """§4: delta results page with nextLink and end with a deltaLink."""
    _, delta = _initial(emu)
    for index in range(5):
        emu.create("accounts", {"name": f"D{index}"})
    seen: list[str] = []
    url = delta
    while True:
        body = emu.request("GET", url, headers={"Prefer": "odata.maxpagesize=2"}).json()
        seen += [v["name"] for v in body["value"]]
        if "@odata.nextLink" not in body:
            assert "@odata.deltaLink" in body
            break
        url = body["@odata.nextLink"]
    assert seen == [f"D{index}" for index in range(5)]


@pytest.mark.parametrize(
    "option", ["$filter=name eq 'x'", "$orderby=name", "$top=1", "$expand=primarycontactid"]
)
def test_options_that_tracking_rejects(emu: Emulator, option: str) -> None:
    """§4: $filter/$orderby/$expand/$top are not allowed with odata.track-changes (400)."""
    response = emu.request("GET", f"accounts?$select=name&{option}", headers=TRACK)
    assert response.status_code == 400
    name = option.split("=")[0]
    assert response.json()["error"]["message"] == (
        f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
    )


def test_tables_without_change_tracking_are_refused(emu: Emulator) -> None:
    """§4: change tracking is a per-table switch (campaign is off by default)."""
    response = emu.request("GET", "campaigns?$select=name", headers=TRACK)
    assert response.status_code == 400
    assert "not enabled" in response.json()["error"]["message"]


def test_tokens_expire_by_age(emu: Emulator) -> None:
    """§4: a token older than the retention (7 days) -> 400 0x80044352 ExpiredVersionStamp."""
    _, delta = _initial(emu)
    emu.clock.advance(days=6)
    assert emu.request("GET", delta).status_code == 200
    emu.clock.advance(days=1, seconds=1)
    response = emu.request("GET", delta)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "0x80044352",
        "message": "Version stamp associated with the client has expired. "
        "Please perform a full sync.",
    }


def test_tokens_expire_when_the_runtime_expires_all_delta_tokens(emu: Emulator) -> None:
    """Fault knob "expire all delta tokens": older tokens fail, new ones work."""
    _, delta = _initial(emu)
    emu.runtime.expire_delta_tokens()
    assert emu.request("GET", delta).json()["error"]["code"] == "0x80044352"
    _, fresh = _initial(emu)
    assert emu.request("GET", fresh).status_code == 200


def test_count_of_changes(emu: Emulator) -> None:
    """§4: GET /accounts/$count?$deltatoken=... returns the number of changes."""
    _, delta = _initial(emu)
    emu.create("accounts", {"name": "One"})
    gone = emu.create("accounts", {"name": "Two"})
    emu.request("DELETE", f"accounts({gone})")
    token = delta.split("$deltatoken=")[1]
    assert emu.request("GET", f"accounts/$count?$deltatoken={token}").text == "2"


def test_a_damaged_token_is_a_clear_400(emu: Emulator) -> None:
    """Bad input gets a clear error: a token that is not ours -> 400, not 500."""
    response = emu.request("GET", "accounts?$select=name&$deltatoken=garbage")
    assert response.status_code == 400
