"""The sync engine between the marketing database and Dynamics.

This package's pure core (no I/O) is imported from here: the field mapping
(:mod:`crmsync.sync.mapping`), value conversion (:mod:`crmsync.sync.convert`), the three-way
merge (:mod:`crmsync.sync.merge`) and the collision policy (:mod:`crmsync.sync.policy`).
"""

from crmsync.sync.mapping import (
    Direction,
    EntityMapping,
    FieldMapping,
    default_mapping,
    mapping_for_selection,
    rest_name_for,
)
from crmsync.sync.merge import Collision, MergeResult, merge_record
from crmsync.sync.policy import CollisionPolicy, CollisionRule, Side, policy_for

__all__ = [
    "Collision",
    "CollisionPolicy",
    "CollisionRule",
    "Direction",
    "EntityMapping",
    "FieldMapping",
    "MergeResult",
    "Side",
    "default_mapping",
    "mapping_for_selection",
    "merge_record",
    "policy_for",
    "rest_name_for",
]
