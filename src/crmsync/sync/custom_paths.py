"""Which Dynamics tables can be custom entities, and on which path (B45, R96, R101, R102).

A table qualifies when its rows point at a lead, contact or account through a lookup, directly
(one level) or through one other table (two levels). Each qualifying table is offered **once,
on its nearest path** (R102): one level beats two; between equal depths contact beats lead,
lead beats account, then the lookup's name decides, so the choice is the same every time.
The tables the sync already handles (leads, contacts, accounts, opportunities, users, teams)
and marketing lists with their members (R101) are never offered.

Pure: it works on the relationship list the metadata API gave
(:mod:`crmsync.dynamics.relations`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from crmsync.dynamics.relations import Lookup

ROOTS: tuple[str, ...] = ("contact", "lead", "account")
"""The tables a custom entity links to, in order of preference (a path to a contact wins)."""

NOT_OFFERED = frozenset(
    {"lead", "contact", "account", "opportunity", "systemuser", "team", "list", "listmember"}
)
"""Tables never offered as custom entities: synced already, or unsupported (R101)."""

MAX_DEPTH = 2


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a path: ``entity.attribute`` holds the id of a ``target`` row."""

    entity: str
    attribute: str
    target: str

    def as_dict(self) -> dict[str, str]:
        """The hop as stored (JSON)."""
        return {"entity": self.entity, "attribute": self.attribute, "target": self.target}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Hop:
        """A hop read back from its stored form."""
        return cls(str(data["entity"]), str(data["attribute"]), str(data["target"]))


@dataclass(frozen=True, slots=True)
class LinkPath:
    """How a custom entity's rows reach a person or company: hops from the entity upwards."""

    hops: tuple[Hop, ...]

    @property
    def root(self) -> str:
        """The lead, contact or account table the path ends at."""
        return self.hops[-1].target

    @property
    def depth(self) -> int:
        """1: the entity points at the root itself; 2: through one other table."""
        return len(self.hops)

    @property
    def link_kind(self) -> str:
        """``person`` for a path to a lead or contact, ``company`` for one to an account."""
        return "company" if self.root == "account" else "person"

    def describe(self) -> str:
        """``new_visit.new_projectid → new_project.new_contactid → contact``."""
        steps = [f"{hop.entity}.{hop.attribute}" for hop in self.hops]
        return " → ".join([*steps, self.root])

    def as_list(self) -> list[dict[str, str]]:
        """The path as stored (JSON)."""
        return [hop.as_dict() for hop in self.hops]

    @classmethod
    def from_list(cls, data: Iterable[Mapping[str, object]]) -> LinkPath:
        """A path read back from its stored form."""
        return cls(tuple(Hop.from_dict(item) for item in data))


def _rank(path: LinkPath) -> tuple[int, int, tuple[str, ...]]:
    return (path.depth, ROOTS.index(path.root), tuple(h.attribute for h in path.hops))


def nearest_paths(lookups: Iterable[Lookup]) -> dict[str, LinkPath]:
    """Every table linked to a root one or two levels deep, with its nearest path (R96, R102)."""
    parents: dict[str, list[Lookup]] = {}
    for lookup in lookups:
        if lookup.referencing in NOT_OFFERED or lookup.referencing == lookup.referenced:
            continue
        parents.setdefault(lookup.referencing, []).append(lookup)
    first: dict[str, LinkPath] = {}
    for entity, own in parents.items():
        for lookup in own:
            if lookup.referenced in ROOTS:
                _keep(first, entity, LinkPath((Hop(entity, lookup.attribute, lookup.referenced),)))
    found = dict(first)
    for entity, own in parents.items():
        if entity in first:
            continue
        for lookup in own:
            via = first.get(lookup.referenced)
            if via is not None:
                hop = Hop(entity, lookup.attribute, lookup.referenced)
                _keep(found, entity, LinkPath((hop, *via.hops)))
    return found


def _keep(paths: dict[str, LinkPath], entity: str, path: LinkPath) -> None:
    known = paths.get(entity)
    if known is None or _rank(path) < _rank(known):
        paths[entity] = path
