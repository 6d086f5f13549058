"""Lead (person) resources of the Marketo API (spec marketo-rest.md §4).

* ``GET /rest/v1/lead/{id}.json`` — one lead by id (§4.3)
* ``GET /rest/v1/leads.json`` — leads by filter type (§4.4)
* ``POST /rest/v1/leads.json`` — sync leads: createOnly, updateOnly, createOrUpdate,
  createDuplicate, ``lookupField``; at most 300 records (§4.5)
* ``POST /rest/v1/leads/delete.json`` and ``DELETE /rest/v1/leads.json`` — delete (§4.6)
* ``GET /rest/v1/leads/describe.json`` and ``describe2.json`` (§4.1, §4.2)
* ``GET /rest/v1/leads/partitions.json`` — the single default partition (§4.10)
* ``GET /rest/v1/leads/schema/fields.json`` and ``…/fields/{name}.json`` — field schema (§4.13)

Record bodies are parsed with ``json.loads`` on the raw body and handed to the person service
as plain dictionaries; per-record problems come back as ``skipped`` results with reasons, in
input order, and change nothing for that record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from crmsync.marketing.fields import FieldCatalog, FieldDef
from crmsync.marketing.objects import describe_field
from crmsync.marketing.outcomes import INVALID_DATA, Reason, RecordOutcome
from crmsync.marketing.persons import FILTER_ONLY_FIELDS, KEY_FIELDS
from crmsync.web.dispatch import MAX_RECORDS_PER_CALL, ApiCall, Route
from crmsync.web.envelope import ApiError, invalid_parameter, skipped, success
from crmsync.web.params import as_record_id

DEFAULT_LEAD_FIELDS = ("id", "updatedAt", "lastName", "email", "createdAt", "firstName")
SYNC_ACTIONS = frozenset({"createOnly", "updateOnly", "createOrUpdate", "createDuplicate"})
CRM_MANAGED_PREFIXES = ("crm",)


def requested_fields(call: ApiCall, catalog: FieldCatalog) -> list[str]:
    """Return the ``fields`` parameter (or the defaults); 1006 for a field nobody knows."""
    fields = call.params.get_list("fields")
    if not fields:
        return list(DEFAULT_LEAD_FIELDS)
    for name in fields:
        if catalog.get(name) is None:
            raise ApiError("1006", f"Field '{name}' not found")
    return list(dict.fromkeys(fields))


def outcome_json(outcome: RecordOutcome, *, skipped_with_id: bool = True) -> dict[str, Any]:
    """Return the wire form of one record outcome (``{"id":…,"status":…}`` or skipped).

    Sync Leads shows skipped records without an id (§4.5); deletes and list calls name the
    id they skipped (§4.6, §6.4).
    """
    if outcome.status == "skipped":
        if outcome.id is not None and skipped_with_id:
            return skipped(outcome.reasons, id=outcome.id)
        return skipped(outcome.reasons)
    record: dict[str, Any] = {"id": outcome.id, "status": outcome.status}
    return record


def outcomes_by_id(
    raw_ids: Sequence[object], act: Callable[[list[int]], Sequence[RecordOutcome]]
) -> dict[str, Any]:
    """Run ``act`` on the valid ids and answer one result per raw id, in input order.

    An id that is not a record id is skipped 1003 ``Invalid data`` and never reaches ``act``;
    ``act`` is not called at all when no id is valid (§4.6, §6.4).
    """
    results: list[dict[str, Any] | None] = [None] * len(raw_ids)
    ids: list[int] = []
    positions: list[int] = []
    for index, raw in enumerate(raw_ids):
        record_id = as_record_id(raw)
        if record_id is None:
            results[index] = skipped([Reason(INVALID_DATA, "Invalid data")])
        else:
            ids.append(record_id)
            positions.append(index)
    if ids:
        for position, outcome in zip(positions, act(ids), strict=True):
            results[position] = outcome_json(outcome)
    return success([item for item in results if item is not None])


def get_lead_by_id(call: ApiCall) -> dict[str, Any]:
    """§4.3: one lead, in the first position of ``result``; an unknown id gives ``[]``."""
    lead_id = call.path_int("id")
    catalog = call.services.person_catalog()
    fields = requested_fields(call, catalog)
    items = call.services.persons.get_by_ids([lead_id], fields)
    return success(list(items))


def get_leads_by_filter(call: ApiCall) -> dict[str, Any]:
    """§4.4: leads whose ``filterType`` field equals one of ``filterValues`` (≤ 300)."""
    filter_type = call.params.require("filterType")
    values = call.params.require_list("filterValues", MAX_RECORDS_PER_CALL)
    catalog = call.services.person_catalog()
    if catalog.get(filter_type) is None:
        raise ApiError("1006", f"Field '{filter_type}' not found")
    fields = requested_fields(call, catalog)
    batch_size = call.params.batch_size()
    token = call.params.get("nextPageToken") or None
    items, next_token = call.services.persons.find(filter_type, values, fields, batch_size, token)
    return success(list(items), next_page_token=next_token)


def sync_leads(call: ApiCall) -> dict[str, Any]:
    """§4.5: create and/or update up to 300 leads; results in input order."""
    document = call.json_object()
    action = document.get("action") or "createOrUpdate"
    if not isinstance(action, str) or action not in SYNC_ACTIONS:
        raise invalid_parameter(f"Invalid action '{action}'")
    lookup_field = document.get("lookupField") or "email"
    if not isinstance(lookup_field, str):
        raise invalid_parameter("Invalid lookupField")
    records = call.input_list()
    outcomes = call.services.persons.sync(
        records, action=action, lookup_field=lookup_field, source=call.services.source
    )
    return success([outcome_json(outcome, skipped_with_id=False) for outcome in outcomes])


def delete_leads(call: ApiCall) -> dict[str, Any]:
    """§4.6: delete leads by id (JSON ``input`` or repeated ``id`` parameters)."""
    return outcomes_by_id(
        call.input_ids("input"),
        lambda ids: call.services.persons.delete(ids, source=call.services.source),
    )


def _is_crm_managed(field: FieldDef) -> bool:
    return field.read_only and field.rest_name.startswith(CRM_MANAGED_PREFIXES)


def describe_leads(call: ApiCall) -> dict[str, Any]:
    """§4.1: every lead field with id, display name, data type, length and REST/SOAP names."""
    catalog = call.services.person_catalog()
    result: list[dict[str, Any]] = []
    for field in catalog.fields:
        item: dict[str, Any] = {
            "id": field.field_id,
            "displayName": field.display_name,
            "dataType": field.data_type,
        }
        if field.length is not None:
            item["length"] = field.length
        item["rest"] = {"name": field.rest_name, "readOnly": field.read_only}
        item["soap"] = {
            "name": field.rest_name[:1].upper() + field.rest_name[1:],
            "readOnly": field.read_only,
        }
        result.append(item)
    return success(result)


# Standard fields usable as filterType, in the order describe2 lists them (spec §4.2, §4.4).
SEARCHABLE_STANDARD_FIELDS: tuple[str, ...] = tuple(
    name
    for name in (
        "email",
        "id",
        "externalCompanyId",
        "externalSalesPersonId",
        "crmLeadId",
        "crmContactId",
        "leadPartitionId",
    )
    if name in KEY_FIELDS | FILTER_ONLY_FIELDS
)
SEARCHABLE_TYPES = frozenset({"string", "email", "integer"})


def describe2_leads(call: ApiCall) -> dict[str, Any]:
    """§4.2: the searchable fields and every field with ``updateable``/``crmManaged``."""
    catalog = call.services.person_catalog()
    searchable: list[list[str]] = [
        [name] for name in SEARCHABLE_STANDARD_FIELDS if catalog.get(name) is not None
    ]
    searchable += [
        [field.rest_name]
        for field in catalog.fields
        if field.is_custom and field.data_type in SEARCHABLE_TYPES
    ]
    fields = [describe_field(field, crm_managed=_is_crm_managed(field)) for field in catalog.fields]
    return success([{"name": "API Lead", "searchableFields": searchable, "fields": fields}])


def _schema_field_json(field: FieldDef) -> dict[str, Any]:
    item: dict[str, Any] = {
        "displayName": field.display_name,
        "name": field.rest_name,
        "description": "",
        "dataType": field.data_type,
    }
    if field.length is not None:
        item["length"] = field.length
    item.update(
        isHidden=False, isHtmlEncodingInEmail=False, isSensitive=False, isCustom=field.is_custom
    )
    return item


def browse_schema_fields(call: ApiCall) -> dict[str, Any]:
    """§4.13: lead fields in the schema shape, paged by ``batchSize``/``nextPageToken``."""
    fields = call.services.person_catalog().fields
    size = call.params.batch_size()
    token = call.params.get("nextPageToken") or "0"
    if not (token.isascii() and token.isdigit()):
        raise invalid_parameter(f"Invalid nextPageToken '{token[:60]}'")
    start = int(token)
    page = [_schema_field_json(field) for field in fields[start : start + size]]
    more = start + size < len(fields)
    return success(page, more_result=more, next_page_token=str(start + size) if more else None)


def get_schema_field(call: ApiCall) -> dict[str, Any]:
    """§4.13: one lead field by REST name; unknown is 1006."""
    name = call.path_args["name"]
    field = call.services.person_catalog().get(name)
    if field is None:
        raise ApiError("1006", f"Field '{name}' not found")
    return success([_schema_field_json(field)])


def get_partitions(call: ApiCall) -> dict[str, Any]:
    """§4.10: crmsync has one lead partition, ``Default``."""
    return success([{"id": 1, "name": "Default", "description": "Initial system lead partition"}])


ROUTES: tuple[Route, ...] = (
    Route("GET", "/rest/v1/lead/{id}.json", get_lead_by_id),
    Route("GET", "/rest/v1/leads.json", get_leads_by_filter),
    Route("POST", "/rest/v1/leads.json", sync_leads),
    Route("DELETE", "/rest/v1/leads.json", delete_leads),
    Route("POST", "/rest/v1/leads/delete.json", delete_leads),
    Route("GET", "/rest/v1/leads/describe.json", describe_leads),
    Route("GET", "/rest/v1/leads/describe2.json", describe2_leads),
    Route("GET", "/rest/v1/leads/partitions.json", get_partitions),
    Route("GET", "/rest/v1/leads/schema/fields.json", browse_schema_fields),
    Route("GET", "/rest/v1/leads/schema/fields/{name}.json", get_schema_field),
)
