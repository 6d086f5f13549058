"""Collection-valued navigation properties of the built-in one-to-many relationships.

``GET accounts(<id>)/Account_Tasks?$select=subject`` (the spec §6 batch example) lists the
rows whose lookup points at the record, paged and queried like any collection. The names are
the relationship schema names (:mod:`crmsync.emulator.relationships`), for built-in and custom
one-to-many relationships alike.
"""

from __future__ import annotations

from collections.abc import Mapping

from crmsync.emulator.context import ApiResponse, RequestContext
from crmsync.emulator.errors import not_found, segment_not_found
from crmsync.emulator.metadata import Catalog, EntityDef
from crmsync.emulator.records import list_records
from crmsync.emulator.relationships import collection_navigation
from crmsync.emulator.storage import q, target_column


def is_collection(entity: EntityDef, name: str, catalog: Catalog) -> bool:
    """Whether ``name`` is a collection-valued navigation property of ``entity``."""
    return collection_navigation(catalog, entity.logical_name, name) is not None


def related(
    ctx: RequestContext, entity: EntityDef, record_id: str, name: str, query: Mapping[str, str]
) -> ApiResponse:
    """The rows of the referencing table whose lookup points at ``record_id``."""
    ctx.require(entity, "read")
    if not ctx.storage.exists(entity, record_id):
        raise not_found(entity.logical_name, record_id)
    relationship = collection_navigation(ctx.catalog, entity.logical_name, name)
    if relationship is None:
        raise segment_not_found(name)
    column = relationship.referencing_attribute
    referencing = ctx.catalog.require(relationship.referencing_entity)
    attribute = referencing.attributes[column]
    condition = f"{q(column)} = ?"
    params: list[object] = [record_id]
    if attribute.is_polymorphic:
        condition += f" AND {q(target_column(attribute))} = ?"
        params.append(entity.logical_name)
    path = f"{entity.entity_set_name}({record_id})/{name}"
    return list_records(ctx, referencing, query, scope=(condition, params), path=path)
