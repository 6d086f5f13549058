"""Acceptance (B45): a custom table created through the metadata API two levels below contact
in the emulator (a subprocess over HTTPS), enabled with ``crmsync entities enable``, loaded,
updated and deleted in Dynamics, synced by ``crmsync sync once``, and read through the
unmodified ``marketorestpython`` client's custom-object calls against ``crmsync serve``.

Its name is longer than Marketo's 33-character limit: crmsync has no limit of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_process import CRMSYNC, emulator_process
from marketo_server import RunningServer, marketo_client, running_server

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.factory import build_client
from crmsync.settings import DynamicsSettings, Secret
from custom_tables import create_row, create_visit_tables

pytestmark = pytest.mark.e2e

VISIT = "new_customer_site_visit_with_a_long_name"  # 40 characters
assert len(VISIT) > 33


def _crmsync(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [CRMSYNC, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[RunningServer, DynamicsClient, dict[str, str]]]:
    org_dir, web_dir = tmp_path / "org", tmp_path / "web"
    org_dir.mkdir()
    web_dir.mkdir()
    with (
        emulator_process(org_dir, "--db", str(org_dir / "org.db"), "--seed", "4") as org,
        running_server(web_dir, setup_by_cli=False) as server,
    ):
        env = {
            **os.environ,
            "NO_COLOR": "1",
            "CRMSYNC_DATABASE_URL": f"sqlite:///{web_dir / 'crmsync.db'}",
            "CRMSYNC_DYNAMICS_URL": org["base_url"],
            "CRMSYNC_DYNAMICS_AUTHORITY": org["base_url"],
            "CRMSYNC_DYNAMICS_TENANT": org["tenant"],
            "CRMSYNC_DYNAMICS_CLIENT_ID": org["client_id"],
            "CRMSYNC_DYNAMICS_CLIENT_SECRET": org["client_secret"],
            "CRMSYNC_DYNAMICS_CA_BUNDLE": org["ca_bundle"],
        }
        env.pop("CRMSYNC_CONFIG", None)
        settings = DynamicsSettings(
            url=org["base_url"],
            authority=org["base_url"],
            tenant=org["tenant"],
            auth_mode="client_credentials",
            client_id=org["client_id"],
            client_secret=Secret(org["client_secret"]),
            ca_bundle=org["ca_bundle"],
        )
        with build_client(settings) as client:
            yield server, client, env


def _by_guid(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["marketoGUID"]: item for item in items}


def test_custom_table_two_levels_below_contact_read_through_marketorestpython(
    setup: tuple[RunningServer, DynamicsClient, dict[str, str]], tmp_path: Path
) -> None:
    server, client, env = setup
    http, root = client.http, client.service_root
    create_visit_tables(http, root, visit=VISIT)
    sets = f"{VISIT}s"
    contact = http.get(f"{root}/contacts?$select=contactid&$top=1").json()["value"][0]["contactid"]
    project = create_row(
        http,
        root,
        "new_projects",
        {"new_name": "Alpha", "new_contactid@odata.bind": f"/contacts({contact})"},
    )
    ids = [
        create_row(
            http,
            root,
            sets,
            {
                "new_name": name,
                "new_note": f"{name} visit",
                "new_hours": hours,
                "new_projectid@odata.bind": f"/new_projects({project})",
            },
        )
        for name, hours in (("first", 2), ("second", 5))
    ]

    listed = {
        row["name"]: row
        for row in json.loads(_crmsync(env, tmp_path, "entities", "list", "--json"))
    }
    assert listed[VISIT]["depth"] == 2 and listed[VISIT]["linkedTo"] == "contact"
    _crmsync(env, tmp_path, "entities", "enable", VISIT)
    _crmsync(env, tmp_path, "sync", "once")

    mc = marketo_client(server)
    (summary,) = mc.execute(method="get_list_of_custom_objects", names=[VISIT])
    assert summary["name"] == VISIT and summary["idField"] == "marketoGUID"
    assert summary["relationships"][0]["relatedTo"] == {"name": "Lead", "field": "id"}
    (described,) = mc.execute(method="describe_custom_object", name=VISIT)
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["new_hours"]["dataType"] == "integer"
    assert fields["new_note"]["updateable"] is False
    assert {"leadId", "new_projectid", "deletedInDynamics"} <= set(fields)

    by_project = _by_guid(
        mc.execute(
            method="get_custom_objects",
            name=VISIT,
            input=[{"new_projectid": project}],
            filterType="new_projectid",
            fields=["new_note", "new_hours", "leadId"],
        )
    )
    assert set(by_project) == set(ids)
    first = by_project[ids[0]]
    assert (first["new_note"], first["new_hours"]) == ("first visit", 2)
    person = first["leadId"]
    assert isinstance(person, int)
    (lead,) = mc.execute(
        method="get_multiple_leads_by_filter_type", filterType="id", filterValues=[str(person)]
    )
    assert lead["id"] == person
    by_person = mc.execute(
        method="get_custom_objects", name=VISIT, input=[{"leadId": person}], filterType="leadId"
    )
    assert {item["marketoGUID"] for item in by_person} == set(ids)

    # changed and deleted in Dynamics, read by the next cycle
    http.patch(
        f"{root}/{sets}({ids[0]})", json={"new_hours": 8}, headers={"If-Match": "*"}
    ).raise_for_status()
    http.delete(f"{root}/{sets}({ids[1]})").raise_for_status()
    _crmsync(env, tmp_path, "sync", "once")
    after = _by_guid(
        mc.execute(
            method="get_custom_objects",
            name=VISIT,
            input=[{"marketoGUID": i} for i in ids],
            filterType="marketoGUID",
        )
    )
    assert after[ids[0]]["new_hours"] == 8 and after[ids[0]]["deletedInDynamics"] is False
    assert after[ids[1]]["deletedInDynamics"] is True
    assert after[ids[1]]["new_note"] == "second visit"

    # owned by Dynamics: the API does not write it
    # (the client raises a plain Exception carrying Marketo's code and message)
    with pytest.raises(Exception, match="1018") as refused:
        mc.execute(method="create_update_custom_objects", name=VISIT, input=[{"new_note": "x"}])
    assert refused.value.args[0] == {"message": "CRM Enabled", "code": "1018"}
    with pytest.raises(Exception, match="1013") as unknown:
        mc.execute(method="describe_custom_object", name="new_nothing")
    assert unknown.value.args[0]["message"] == "Object not found: new_nothing"
