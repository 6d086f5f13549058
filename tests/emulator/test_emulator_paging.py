"""Server-driven paging (spec §3): maxpagesize, opaque nextLink, 5,000 cap, stable keyset pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from data_plane_support import API, Emulator, running_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def _seed(emu: Emulator, count: int) -> list[str]:
    rows = [
        {"lastname": f"Lead {index:05d}", "numberofemployees": index % 7} for index in range(count)
    ]
    return emu.storage.insert_many("lead", rows, acting_user=emu.app_user.systemuserid)


def _page(emu: Emulator, url: str, size: int) -> dict[str, Any]:
    response = emu.request("GET", url, headers={"Prefer": f"odata.maxpagesize={size}"})
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == f"odata.maxpagesize={size}"
    return response.json()  # type: ignore[no-any-return]


def test_next_link_shape_and_following_it_verbatim(emu: Emulator) -> None:
    """§3: pages of maxpagesize, absolute nextLink with a cookie-shaped $skiptoken."""
    ids = _seed(emu, 5)
    first = _page(emu, f"{API}/leads?$select=lastname", 2)
    assert len(first["value"]) == 2
    link = first["@odata.nextLink"]
    assert link.startswith(f"{API}/leads?$select=lastname&$skiptoken=")
    cookie = unquote(link.split("$skiptoken=")[1])
    assert (
        cookie.startswith('<cookie pagenumber="2" pagingcookie="')
        and 'istracking="False"' in cookie
    )
    seen = [row["leadid"] for row in first["value"]]
    url = link
    while url:
        body = _page(emu, url, 2)
        seen += [row["leadid"] for row in body["value"]]
        url = body.get("@odata.nextLink")
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))


def test_default_and_maximum_page_size_is_5000(emu: Emulator) -> None:
    """§3: default and maximum page size 5,000; a larger request is capped."""
    _seed(emu, 5001)
    plain = emu.request("GET", "leads?$select=lastname").json()
    assert len(plain["value"]) == 5000 and "@odata.nextLink" in plain
    big = emu.request("GET", "leads?$select=lastname", headers={"Prefer": "odata.maxpagesize=9000"})
    assert len(big.json()["value"]) == 5000
    assert big.headers["Preference-Applied"] == "odata.maxpagesize=5000"
    counted = emu.request(
        "GET",
        "leads?$select=lastname&$count=true",
        headers={"Prefer": 'odata.maxpagesize=1,odata.include-annotations="*"'},
    ).json()
    assert counted["@odata.count"] == 5000
    assert counted["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is True


def test_paging_is_stable_under_concurrent_writes(emu: Emulator) -> None:
    """§3 (cc-ordering-paging): no row skipped or repeated while others insert, update, delete."""
    ids = _seed(emu, 60)
    survivors = set(ids)
    seen: list[str] = []
    url: str | None = f"{API}/leads?$select=lastname"
    round_number = 0
    while url:
        body = _page(emu, url, 7)
        seen += [row["leadid"] for row in body["value"]]
        url = body.get("@odata.nextLink")
        round_number += 1
        # Between pages: update rows on both sides of the cursor, delete an unseen row,
        # insert new rows.
        unseen = sorted(survivors - set(seen))
        for record in (seen[0], *unseen[:1]):
            emu.request("PATCH", f"leads({record})", {"jobtitle": f"round {round_number}"})
        if len(unseen) > 3:
            emu.request("DELETE", f"leads({unseen[-1]})")
            survivors.discard(unseen[-1])
        emu.create("leads", {"lastname": f"Inserted {round_number}"})
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert survivors <= set(seen), "a row present throughout was skipped"


def test_paging_with_orderby_and_filter_keeps_order(emu: Emulator) -> None:
    """§3: $orderby with the key as tie-breaker pages in order; $filter applies on every page."""
    _seed(emu, 30)
    url: str | None = (
        f"{API}/leads?$select=lastname,numberofemployees&$orderby=numberofemployees desc"
        "&$filter=numberofemployees ne 3"
    )
    keys: list[tuple[int, str]] = []
    while url:
        body = _page(emu, url, 4)
        keys += [(row["numberofemployees"], row["leadid"]) for row in body["value"]]
        url = body.get("@odata.nextLink")
    assert len(keys) == len({k[1] for k in keys}) == 30 - 4
    assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=True)
    assert 3 not in {k[0] for k in keys}


def test_top_with_maxpagesize_ignores_top(emu: Emulator) -> None:
    """§3 (2024 page-results): with both $top and odata.maxpagesize, $top is ignored."""
    _seed(emu, 6)
    body = _page(emu, f"{API}/leads?$select=lastname&$top=1", 4)
    assert len(body["value"]) == 4 and "@odata.nextLink" in body


def test_a_forged_skiptoken_is_a_400(emu: Emulator) -> None:
    """Bad input gets a clear error, never a 500."""
    response = emu.request("GET", "leads?$select=lastname&$skiptoken=%3Ccookie%20/%3E")
    assert response.status_code == 400


def test_paging_while_another_thread_writes(emu: Emulator) -> None:
    """§3: a writer thread inserting and deleting while pages are read skips and repeats nothing."""
    import threading

    keep = set(_seed(emu, 200))
    doomed = _seed(emu, 50)
    stop = threading.Event()

    def writer() -> None:
        table = emu.storage.catalog.require("lead")
        batch = 0
        while not stop.wait(0.001) and batch < 300:
            emu.storage.insert_many(
                "lead", [{"lastname": f"New {batch}"}], acting_user=emu.app_user.systemuserid
            )
            if doomed:
                with emu.storage.transaction():
                    emu.storage.delete(table, doomed.pop())
            batch += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen: list[str] = []
        url: str | None = f"{API}/leads?$select=lastname"
        while url:
            body = _page(emu, url, 9)
            seen += [row["leadid"] for row in body["value"]]
            url = body.get("@odata.nextLink")
    finally:
        stop.set()
        thread.join()
    assert len(seen) == len(set(seen))
    assert keep <= set(seen)
