"""The sync engine between the marketing database and Dynamics.

Its pure core (no I/O) is imported from here: the field mapping (:mod:`crmsync.sync.mapping`),
value conversion (:mod:`crmsync.sync.convert`), the three-way merge
(:mod:`crmsync.sync.merge`), the collision policy (:mod:`crmsync.sync.policy`), and the
planning of a page of Dynamics changes (:mod:`crmsync.sync.plan`). The outbox is pushed by
:class:`crmsync.sync.push.OutboxPusher`.
"""

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
