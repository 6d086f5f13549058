"""How each table is addressed (logical name, URL entity set, primary key) and the schemas
read so far: the caches every request that names a table goes through.

An entity set name is never derived by adding "s" (spec §2a): the well-known tables are known
up front, and any other is looked up once in ``EntityDefinitions``.
"""

from __future__ import annotations

import threading

from crmsync.dynamics.batch import Target
from crmsync.dynamics.query import WELL_KNOWN_ENTITIES, EntitySetInfo, quote_query_value
from crmsync.dynamics.transport import Transport
from crmsync.dynamics.types import EntitySchema
from crmsync.errors import ConfigurationError


class EntityDirectory:
    """Entity addressing and schemas for one org, cached; safe to share between threads."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._lock = threading.Lock()
        self._entities: dict[str, EntitySetInfo] = {}
        for info in WELL_KNOWN_ENTITIES:
            self._remember(info)
        self._schemas: dict[str, EntitySchema] = {}

    def _remember(self, info: EntitySetInfo) -> None:
        self._entities[info.logical_name] = info
        self._entities[info.entity_set] = info

    def entity(self, name: str) -> EntitySetInfo:
        """How to address a table given its logical name or entity set name (cached)."""
        with self._lock:
            known = self._entities.get(name)
        if known is not None:
            return known
        quoted = name.replace("'", "''")
        select = "$select=LogicalName,EntitySetName,PrimaryIdAttribute"
        filter_text = quote_query_value(f"EntitySetName eq '{quoted}' or LogicalName eq '{quoted}'")
        document = self._transport.get_json(
            f"EntityDefinitions?{select}&$filter={filter_text}", kind="metadata"
        )
        for row in document.get("value") or []:
            info = EntitySetInfo(
                str(row.get("LogicalName")),
                str(row.get("EntitySetName")),
                str(row.get("PrimaryIdAttribute")),
            )
            with self._lock:
                self._remember(info)
            return info
        raise ConfigurationError(f"Dynamics has no table called {name!r}")

    def cached_schema(self, logical_name: str) -> EntitySchema | None:
        """The schema last read for a table, if one was read."""
        with self._lock:
            return self._schemas.get(logical_name)

    def remember_schema(self, schema: EntitySchema) -> None:
        """Keep a freshly read schema (replacing an older one) and the addressing it names."""
        with self._lock:
            self._schemas[schema.logical_name] = schema
            if schema.entity_set_name and schema.primary_id:
                self._remember(
                    EntitySetInfo(schema.logical_name, schema.entity_set_name, schema.primary_id)
                )

    def target(self, logical_name: str) -> Target:
        """Where writes to a table go."""
        info = self.entity(logical_name)
        return Target(info.entity_set, info.primary_id, self.cached_schema(info.logical_name))
