"""RetrieveTotalRecordCount (spec §3 "Count"): the number of records of each named table,
beyond ``$count``'s 5,000 cap; a bad parameter or unknown table is a clear 400."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from data_plane_support import Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def test_counts_each_named_table(emu: Emulator) -> None:
    for n in range(3):
        emu.create("leads", {"lastname": f"Count {n}"})
    response = emu.request(
        "GET", "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=" + quote("['lead','account']")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith(
        "#Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse"
    )
    collection = body["EntityRecordCountCollection"]
    assert collection["Keys"] == ["lead", "account"]
    assert collection["Values"][0] == emu.storage.count("lead") >= 3
    assert collection["Values"][1] == emu.storage.count("account")


def test_unknown_table_or_malformed_names_are_refused(emu: Emulator) -> None:
    unknown = emu.request(
        "GET", "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=" + quote("['nosuch']")
    )
    assert unknown.status_code == 400
    assert "nosuch" in unknown.json()["error"]["message"]
    garbled = emu.request("GET", "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=lead")
    assert garbled.status_code == 400
