"""Custom objects (Marketo REST ``customobjects``): the custom entities read from Dynamics
(B45), read-only.

``GET /rest/v1/customobjects.json`` lists them (``names`` narrows the list),
``GET /rest/v1/customobjects/{name}/describe.json`` describes one, and
``GET /rest/v1/customobjects/{name}.json`` queries its records by a searchable field:
``filterType`` with ``filterValues``, or (as ``_method=GET`` with a JSON body) an ``input``
list of ``{filterType: value}`` objects. They are owned by Dynamics: writes and deletes are
refused with 1018.
"""

from __future__ import annotations

from typing import Any

from crmsync.marketing.custom_objects import object_type, object_types, query_records
from crmsync.web.api_marketo_objects import crm_enabled
from crmsync.web.dispatch import MAX_RECORDS_PER_CALL, ApiCall, Route
from crmsync.web.envelope import blank, invalid_parameter, success


def list_objects(call: ApiCall) -> dict[str, Any]:
    """List the custom objects (``names``: only these)."""
    with call.services.engine.connect() as conn:
        kinds = object_types(conn, call.params.get_list("names"))
    return success([kind.summary() for kind in kinds])


def describe_object(call: ApiCall) -> dict[str, Any]:
    """Describe one custom object: its id, dedupe, searchable and link fields, every field."""
    with call.services.engine.connect() as conn:
        kind = object_type(conn, call.path_args["name"])
    return success([kind.describe()])


def query_objects(call: ApiCall) -> dict[str, Any]:
    """Records of a custom object whose searchable field is one of the given values."""
    filter_type = call.params.require("filterType")
    values: list[object] = list(call.params.get_list("filterValues"))
    if not values and call.has_body():
        for record in call.input_list():
            if not isinstance(record, dict) or filter_type not in record:
                raise invalid_parameter(
                    f"Invalid data: each input record must be an object with '{filter_type}'"
                )
            values.append(record[filter_type])
    if not values:
        raise blank("filterValues")
    if len(values) > MAX_RECORDS_PER_CALL:
        raise invalid_parameter(
            f"Batch size of {len(values)} exceeds the maximum of {MAX_RECORDS_PER_CALL}"
        )
    with call.services.engine.connect() as conn:
        kind = object_type(conn, call.path_args["name"])
        items, token = query_records(
            conn,
            kind,
            filter_type,
            values,
            call.params.get_list("fields") or None,
            call.params.batch_size(),
            call.params.get("nextPageToken") or None,
        )
    return success(items, next_page_token=token)


def refuse_write(call: ApiCall) -> dict[str, Any]:
    """Custom entities are read from Dynamics: writing them here is refused (1018)."""
    with call.services.engine.connect() as conn:
        object_type(conn, call.path_args["name"])  # 1013 for an unknown one
    raise crm_enabled()


ROUTES: tuple[Route, ...] = (
    Route("GET", "/rest/v1/customobjects.json", list_objects),
    Route("GET", "/rest/v1/customobjects/{name}/describe.json", describe_object),
    Route("POST", "/rest/v1/customobjects/{name}/delete.json", refuse_write),
    Route("GET", "/rest/v1/customobjects/{name}.json", query_objects),
    Route("POST", "/rest/v1/customobjects/{name}.json", refuse_write),
)
