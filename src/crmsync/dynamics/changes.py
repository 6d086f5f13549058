"""Where a page of changes is parsed: one change-tracking page (spec §4) into a
:class:`~crmsync.dynamics.types.ChangePage` of changed rows, tombstones and links.

A tracking read returns the full selected columns for new and changed rows (no created/updated
flag), then tombstones ``{"@odata.context": "...#leads/$deletedEntity", "id": ..., "reason":
"deleted"}``. Pages chain through ``@odata.nextLink``; only the last page carries
``@odata.deltaLink``, so the cursor is handed out only with the last page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsync.dynamics.query import EntitySetInfo, RowConverter
from crmsync.dynamics.types import ChangePage, CrmChange, CrmDelete

TRACK_CHANGES = "odata.track-changes"
"""The ``Prefer`` preference that starts a change-tracking read."""


def is_tombstone(row: Mapping[str, Any]) -> bool:
    """Whether a row is a ``$deletedEntity`` tombstone rather than a changed record."""
    context = row.get("@odata.context")
    if isinstance(context, str) and context.endswith("$deletedEntity"):
        return True
    return context is not None and row.get("reason") == "deleted"


def parse_change_page(
    info: EntitySetInfo, document: Mapping[str, Any], converter: RowConverter
) -> ChangePage:
    """Split one page into :class:`CrmChange` / :class:`CrmDelete` items, with its links."""
    items: list[CrmChange | CrmDelete] = []
    for row in document.get("value") or []:
        if not isinstance(row, Mapping):
            continue
        if is_tombstone(row):
            record_id = row.get("id") or row.get(info.primary_id)
            if record_id:
                items.append(CrmDelete(entity=info.logical_name, id=str(record_id).lower()))
            continue
        items.append(CrmChange(converter.convert(row)))
    next_link = document.get("@odata.nextLink")
    delta_link = document.get("@odata.deltaLink")
    return ChangePage(
        entity=info.logical_name,
        items=tuple(items),
        next_link=str(next_link) if next_link else None,
        delta_link=str(delta_link) if delta_link else None,
    )
