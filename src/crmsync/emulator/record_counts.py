"""``RetrieveTotalRecordCount``: how many records tables hold, beyond ``$count``'s 5,000 cap.

``GET RetrieveTotalRecordCount(EntityNames=@p1)?@p1=['lead','contact']`` answers a
``RetrieveTotalRecordCountResponse`` whose ``EntityRecordCountCollection`` pairs ``Keys``
(the tables) with ``Values`` (their counts). Dataverse serves a snapshot up to a day old; the
emulator counts exactly (a snapshot that happens to be fresh). Each table needs read access.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from crmsync.dataverse_codes import INVALID_ARGUMENT
from crmsync.emulator.context import ApiResponse, RequestContext, json_response
from crmsync.emulator.errors import bad_request
from crmsync.emulator.metadata_query import parameters
from crmsync.emulator.storage import q

FUNCTION = "RetrieveTotalRecordCount"


def is_function_path(path: str) -> bool:
    """Whether ``path`` addresses ``RetrieveTotalRecordCount``."""
    head = path.strip("/").removeprefix("Microsoft.Dynamics.CRM.")
    return head == FUNCTION or head.startswith(FUNCTION + "(")


def _names(raw: str | None) -> list[str]:
    """``['lead','contact']`` (an OData collection literal) or a JSON list → the names."""
    text = (raw or "").strip()
    try:
        value = json.loads(text.replace("'", '"'))
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(
            INVALID_ARGUMENT, "EntityNames must be a list of table names, like ['lead']."
        )
    return [str(v) for v in value]


def retrieve_total_record_count(
    ctx: RequestContext, path: str, aliases: Mapping[str, str]
) -> ApiResponse:
    """Count the records of each named table."""
    names = _names(parameters(path, aliases, FUNCTION).get("EntityNames"))
    counts: list[int] = []
    for name in names:
        entity = ctx.catalog.get(name)
        if entity is None:
            raise bad_request(INVALID_ARGUMENT, f"There is no table named '{name}'.")
        ctx.require(entity, "read")
        table = q(entity.table)  # a catalog table name, quoted
        with ctx.storage.lock:
            row = ctx.storage.execute(f"SELECT COUNT(*) FROM {table}", []).fetchone()  # noqa: S608
        counts.append(int(row[0]))
    return json_response(
        200,
        {
            "@odata.context": (
                f"{ctx.base_url}/$metadata#Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse"
            ),
            "EntityRecordCountCollection": {
                "Count": len(names),
                "IsReadOnly": False,
                "Keys": names,
                "Values": counts,
            },
        },
    )
