"""Creating custom tables two levels below contact through the metadata Web API, as an admin
customizing Dynamics would: ``new_project`` (a lookup to contact) and ``new_visit`` (a lookup to
new_project, a text and a whole-number column), both with change tracking on."""

from __future__ import annotations

from typing import Any

import httpx


def _label(text: str) -> dict[str, Any]:
    return {"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}]}


def _table(
    schema: str, display: str, *extra: dict[str, Any], tracked: bool = True
) -> dict[str, Any]:
    return {
        "SchemaName": schema,
        "DisplayName": _label(display),
        "DisplayCollectionName": _label(f"{display}s"),
        "OwnershipType": "UserOwned",
        "ChangeTrackingEnabled": tracked,
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


def _lookup(schema: str, referenced: str, referencing: str, column: str) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": schema,
        "ReferencedEntity": referenced,
        "ReferencingEntity": referencing,
        "Lookup": {
            "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            "SchemaName": column,
            "DisplayName": _label(column),
        },
    }


def create_visit_tables(
    http: httpx.Client, root: str, visit: str = "new_Visit", *, visit_tracked: bool = True
) -> None:
    """Create new_project (→ contact) and ``visit`` (default new_visit; → new_project) at the
    Web API ``root``; ``visit_tracked=False`` leaves change tracking off for ``visit``."""
    requests = [
        ("EntityDefinitions", _table("new_Project", "Project")),
        (
            "RelationshipDefinitions",
            _lookup("new_contact_new_project", "contact", "new_project", "new_ContactId"),
        ),
        (
            "EntityDefinitions",
            _table(
                visit,
                "Visit",
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                    "SchemaName": "new_Note",
                    "MaxLength": 200,
                    "DisplayName": _label("Note"),
                },
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
                    "SchemaName": "new_Hours",
                    "MinValue": 0,
                    "MaxValue": 1000,
                    "DisplayName": _label("Hours"),
                },
                tracked=visit_tracked,
            ),
        ),
        (
            "RelationshipDefinitions",
            _lookup(
                f"new_project_{visit.lower()[4:]}", "new_project", visit.lower(), "new_ProjectId"
            ),
        ),
    ]
    for path, body in requests:
        response = http.post(f"{root}/{path}", json=body)
        assert response.status_code == 204, response.text


def create_row(http: httpx.Client, root: str, entity_set: str, body: dict[str, Any]) -> str:
    """Create a row; return its id (from ``OData-EntityId``)."""
    response = http.post(f"{root}/{entity_set}", json=body)
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
