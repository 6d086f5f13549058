"""Deleting a row the way Dataverse does: each relationship's ``CascadeConfiguration.Delete``.

For every one-to-many relationship whose referenced table is the deleted row's
(:mod:`crmsync.emulator.relationships`), the rows that point at it are:

* ``Cascade`` — deleted too, each with its own cascades, leaving a tombstone, so a change-tracking
  read shows them as ``$deletedEntity`` (``reason: deleted``);
* ``RemoveLink`` — kept, with the lookup set to null and fresh ``modifiedon``/``modifiedby``/
  ``versionnumber``, so a change-tracking read shows them as changed rows with a null lookup;
* ``Restrict`` — the delete is refused (400 CannotDeleteDueToAssociation) and nothing changes.

(Microsoft Learn, "Configure table relationship cascading behavior",
https://learn.microsoft.com/power-apps/maker/data-platform/configure-entity-relationship-
cascading-behavior, and the CascadeConfiguration complex type.) The request's transaction
makes the whole tree one unit: a Restrict met deep down undoes the deletes done before it.

Where the docs are silent: the cascade runs with the caller's identity for the stamps but
needs no privilege on the related rows (the platform runs cascades as the system).
"""

# SQL identifiers here come from validated metadata (SAFE_NAME) and are quoted by q();
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from crmsync.emulator.context import RequestContext
from crmsync.emulator.errors import delete_restricted
from crmsync.emulator.lists import remove_memberships_of
from crmsync.emulator.metadata import EntityDef
from crmsync.emulator.relationships import CASCADE, REMOVE_LINK, RESTRICT, OneToMany, one_to_many
from crmsync.emulator.storage import iso, q, target_column


def delete_row(ctx: RequestContext, entity: EntityDef, record_id: str) -> None:
    """Delete one row and apply the delete cascades of every relationship pointing at it."""
    _delete(ctx, entity, record_id.lower(), set())


def _delete(ctx: RequestContext, entity: EntityDef, record_id: str, seen: set[str]) -> None:
    seen.add(f"{entity.logical_name}:{record_id}")
    remove_memberships_of(ctx, entity, record_id)
    for relationship in one_to_many(ctx.catalog):
        if relationship.referenced_entity != entity.logical_name:
            continue
        if relationship.delete not in (CASCADE, REMOVE_LINK, RESTRICT):
            continue
        referencing = ctx.catalog.get(relationship.referencing_entity)
        if referencing is None:
            continue
        related = [
            row_id
            for row_id in _referencing_ids(ctx, referencing, relationship, record_id)
            if f"{referencing.logical_name}:{row_id}" not in seen
        ]
        if not related:
            continue
        if relationship.delete == RESTRICT:
            raise delete_restricted(entity.logical_name, record_id, referencing.logical_name)
        for row_id in related:
            if relationship.delete == CASCADE:
                if ctx.storage.exists(referencing, row_id):
                    _delete(ctx, referencing, row_id, seen)
            else:
                _remove_link(ctx, referencing, relationship, row_id)
    ctx.storage.delete(entity, record_id)


def _referencing_ids(
    ctx: RequestContext, referencing: EntityDef, relationship: OneToMany, record_id: str
) -> list[str]:
    column = relationship.referencing_attribute
    attribute = referencing.attributes[column]
    sql = f"SELECT {q(referencing.primary_id)} FROM {q(referencing.table)} WHERE {q(column)} = ?"
    params: list[object] = [record_id]
    if attribute.is_polymorphic:
        sql += f" AND {q(target_column(attribute))} = ?"
        params.append(relationship.referenced_entity)
    with ctx.storage.lock:
        return [str(row[0]) for row in ctx.storage.execute(sql, params).fetchall()]


def _remove_link(
    ctx: RequestContext, referencing: EntityDef, relationship: OneToMany, row_id: str
) -> None:
    attribute = referencing.attributes[relationship.referencing_attribute]
    changes: dict[str, object] = {attribute.logical_name: None}
    if attribute.is_polymorphic:
        changes[target_column(attribute)] = None
    changes["modifiedon"] = iso(ctx.runtime.clock())
    changes["modifiedby"] = ctx.user_id
    changes["versionnumber"] = ctx.storage.next_version()
    ctx.storage.update(referencing, row_id, changes)
