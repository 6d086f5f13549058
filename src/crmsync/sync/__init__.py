"""The sync engine between the marketing database and Dynamics.

Its pure core (no I/O) is imported from here: the field mapping (:mod:`crmsync.sync.mapping`),
value conversion (:mod:`crmsync.sync.convert`), the three-way merge
(:mod:`crmsync.sync.merge`), the collision policy (:mod:`crmsync.sync.policy`), and the
planning of a page of Dynamics changes (:mod:`crmsync.sync.plan`). The outbox is pushed by
:class:`crmsync.sync.push.OutboxPusher`.

The names are loaded on first use, so importing one module of the package (such as
:mod:`crmsync.sync.status`) does not load the whole engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmsync.sync.mapping import (
        ColumnChoice,
        Direction,
        EntityMapping,
        FieldMapping,
        default_mapping,
        mapping_for_selection,
        rest_name_for,
    )
    from crmsync.sync.merge import Collision, MergeResult, merge_record
    from crmsync.sync.plan import LinkState, LocalRecord, PagePlan, plan_page, sync_filter
    from crmsync.sync.policy import (
        CollisionPolicy,
        CollisionRule,
        FieldRule,
        Side,
        SyncRule,
        policy_for,
    )

_HOMES = {
    "Collision": "merge",
    "CollisionPolicy": "policy",
    "CollisionRule": "policy",
    "ColumnChoice": "mapping",
    "Direction": "mapping",
    "EntityMapping": "mapping",
    "FieldMapping": "mapping",
    "FieldRule": "policy",
    "LinkState": "plan",
    "LocalRecord": "plan",
    "MergeResult": "merge",
    "PagePlan": "plan",
    "Side": "policy",
    "SyncRule": "policy",
    "default_mapping": "mapping",
    "mapping_for_selection": "mapping",
    "merge_record": "merge",
    "plan_page": "plan",
    "policy_for": "policy",
    "rest_name_for": "mapping",
    "sync_filter": "plan",
}

__all__ = [
    "Collision",
    "CollisionPolicy",
    "CollisionRule",
    "ColumnChoice",
    "Direction",
    "EntityMapping",
    "FieldMapping",
    "FieldRule",
    "LinkState",
    "LocalRecord",
    "MergeResult",
    "PagePlan",
    "Side",
    "SyncRule",
    "default_mapping",
    "mapping_for_selection",
    "merge_record",
    "plan_page",
    "policy_for",
    "rest_name_for",
    "sync_filter",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
