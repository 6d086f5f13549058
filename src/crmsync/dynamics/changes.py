"""Change tracking pages (spec §4): changed rows, ``$deletedEntity`` tombstones, delta links.

A tracking read returns the full selected columns for new and changed rows (no created/updated
flag), then tombstones ``{"@odata.context": "...#leads/$deletedEntity", "id": ..., "reason":
"deleted"}``. Pages chain through ``@odata.nextLink``; only the last page carries
``@odata.deltaLink``, so the cursor is handed out only with the last page — the caller must not
store a cursor before it has kept every item before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crmsync.dynamics.query import EntitySetInfo, RowConverter
from crmsync.dynamics.types import CrmChange, CrmDelete, DeltaCursor, EntitySchema

TRACK_CHANGES = "odata.track-changes"


@dataclass(frozen=True, slots=True)
class ParsedChangePage:
    """The items of one tracking page and where to go next."""

    items: tuple[CrmChange | CrmDelete, ...]
    next_link: str | None
    delta_link: str | None


def is_tombstone(row: Mapping[str, Any]) -> bool:
    """Whether a row is a ``$deletedEntity`` tombstone rather than a changed record."""
    context = row.get("@odata.context")
    if isinstance(context, str) and context.endswith("$deletedEntity"):
        return True
    return context is not None and row.get("reason") == "deleted"


def parse_change_page(
    info: EntitySetInfo,
    document: Mapping[str, Any],
    schema: EntitySchema | None = None,
    converter: RowConverter | None = None,
) -> ParsedChangePage:
    """Split one page into :class:`CrmChange` / :class:`CrmDelete` items."""
    convert = (converter or RowConverter(info, schema)).convert
    items: list[CrmChange | CrmDelete] = []
    for row in document.get("value") or []:
        if not isinstance(row, Mapping):
            continue
        if is_tombstone(row):
            record_id = row.get("id") or row.get(info.primary_id)
            if record_id:
                items.append(CrmDelete(entity=info.logical_name, id=str(record_id).lower()))
            continue
        items.append(CrmChange(convert(row)))
    next_link = document.get("@odata.nextLink")
    delta_link = document.get("@odata.deltaLink")
    return ParsedChangePage(
        items=tuple(items),
        next_link=str(next_link) if next_link else None,
        delta_link=str(delta_link) if delta_link else None,
    )


def cursor_for(info: EntitySetInfo, delta_link: str) -> DeltaCursor:
    """The cursor a later :meth:`DynamicsClient.read_changes` starts from."""
    return DeltaCursor(entity=info.logical_name, delta_link=delta_link)
