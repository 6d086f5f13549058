"""The whole flow of the third-party ``dataverse-api`` client against a running emulator.

Run with the Python of the client's own virtual environment (the conformance test makes it):
``python conformance_dataverse_api_flow.py '<connection details JSON>'``. Prints one JSON object
with what each step saw; the test asserts on it. Nothing here knows the emulator: the client
gets a ``requests`` session with a bearer token and the org URL, as against a real org.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import requests
from dataverse_api.dataverse import DataverseClient
from dataverse_api.metadata.attributes import IntegerAttributeMetadata, StringAttributeMetadata
from dataverse_api.metadata.complex_properties import create_label
from dataverse_api.metadata.entity import define_entity


def _statuses(responses: Any) -> list[int]:
    items = responses if isinstance(responses, list) else [responses]
    return [int(r.status_code) for r in items]


def _names(entity: Any) -> dict[str, Any]:
    rows = entity.read(select=["new_name", "new_budget"])
    return {row["new_name"]: row["new_budget"] for row in rows}


def run(details: dict[str, Any]) -> dict[str, Any]:
    """Every step of the flow; each value is what a user of the client would look at."""
    session = requests.Session()
    session.trust_env = False
    token = session.post(
        details["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": details["client_id"],
            "client_secret": details["client_secret"],
            "scope": details["scope"],
        },
        timeout=30,
    ).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    client = DataverseClient(session=session, environment_url=details["base_url"] + "/")
    seen: dict[str, Any] = {"languages": client.get_language_codes()}
    lead = client.entity("lead")
    seen["lead_schema"] = [
        lead.entity_set_name,
        lead.primary_id_attr,
        lead.primary_img_attr,
        lead.supports_create_multiple,
        lead.supports_update_multiple,
        sorted(lead.alternate_keys),
    ]
    seen["account_definition"] = client.get_entity_definition("account").schema_name
    table = define_entity(
        schema_name="new_Project",
        attributes=[
            StringAttributeMetadata(
                schema_name="new_Name",
                is_primary_name=True,
                max_length=100,
                display_name=create_label(label="Name"),
            ),
            IntegerAttributeMetadata(
                schema_name="new_Budget",
                min_value=0,
                max_value=1_000_000,
                display_name=create_label(label="Budget"),
            ),
        ],
    )
    seen["create_entity"] = _statuses(client.create_entity(table))
    projects = client.entity("new_project")
    seen["project_set"] = projects.entity_set_name
    seen["create"] = {
        mode: _statuses(projects.create([{"new_name": f"{mode}-{i}"} for i in range(3)], mode=mode))
        for mode in ("individual", "multiple", "batch")
    }
    pages = projects.read(select=["new_name"], page_size=2, return_responses=True)
    seen["paged_read"] = [len(pages), sum(len(p.json()["value"]) for p in pages)]
    rows = projects.read(select=["new_name"], order_by="new_name")
    by_name = {row["new_name"]: row["new_projectid"] for row in rows}
    seen["upsert_by_id"] = _statuses(
        projects.upsert([{"new_projectid": by_name["individual-0"], "new_budget": 1}])
    ) + _statuses(
        projects.upsert([{"new_projectid": by_name["individual-1"], "new_budget": 2}], mode="batch")
    )
    key = session.post(
        f"{details['web_api_url']}EntityDefinitions(LogicalName='new_project')/Keys",
        json={
            "SchemaName": "new_NameKey",
            "DisplayName": {"LocalizedLabels": [{"Label": "Name key", "LanguageCode": 1033}]},
            "KeyAttributes": ["new_name"],
        },
        timeout=30,
    )
    seen["define_key"] = key.status_code
    projects.update_schema("altkeys")
    seen["alternate_keys"] = projects.alternate_keys
    seen["upsert_by_key"] = _statuses(
        projects.upsert(
            [
                {"new_name": "keyed-new", "new_budget": 7},
                {"new_name": "multiple-0", "new_budget": 8},
            ],
            altkey_name="new_NameKey",
        )
    ) + _statuses(
        projects.upsert(
            [{"new_name": "keyed-batch", "new_budget": 9}], altkey_name="new_NameKey", mode="batch"
        )
    )
    seen["after_upserts"] = _names(projects)
    seen["delete"] = _statuses(projects.delete(ids=[by_name["individual-2"]])) + _statuses(
        projects.delete(filter="startswith(new_name,'batch-')", mode="batch")
    )
    seen["after_deletes"] = sorted(_names(projects))
    seen["delete_entity"] = _statuses(client.delete_entity("new_project"))
    return seen


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
