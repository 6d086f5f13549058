"""Table schemas kept in the database between runs, refreshed only where Dynamics changed them.

A one-off ``crmsync sync once`` used to read every table's definitions again (dozens of
metadata requests) where a cycle inside a long-running sync reads none. Now the schemas the
cycle used are stored with Dynamics' version stamp (in the ``sync_settings`` key/value
table), and the next process asks ``RetrieveMetadataChanges`` once which tables changed since
that stamp: unchanged tables use the stored schema, changed ones (and tables with a deleted
column) are read again as before. An expired stamp, another org, or a stored copy that cannot
be read means every schema is read again: never a stale one.

The stamp is taken *before* the schemas are read, so a change made while they are read shows
up as changed next time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from crmsync.dynamics.client import DynamicsClient
from crmsync.dynamics.schema_changes import schema_from_json, schema_to_json, touched_by
from crmsync.dynamics.types import EntitySchema
from crmsync.errors import CrmsyncError
from crmsync.store.key_values import get_setting, set_setting

SETTING_KEY = "dynamics_schemas"
"""The ``sync_settings`` key holding ``{"service_root", "stamp", "schemas"}``."""
FORMAT = 1


class StoredSchemas:
    """Load the stored schemas into the client before a process's first cycle reads them,
    and store what that cycle used afterwards."""

    def __init__(self, engine: Engine, client: DynamicsClient, entities: Sequence[str]) -> None:
        self._engine = engine
        self._client = client
        self._entities = tuple(entities)
        self._prepared = False
        self._stamp: str | None = None

    def before_reads(self) -> None:
        """Once per process: one ``RetrieveMetadataChanges`` with the stored stamp; the
        stored schemas of tables Dynamics did not change are handed to the client."""
        if self._prepared:
            return
        self._prepared = True
        with self._engine.connect() as conn:
            stored = get_setting(conn, SETTING_KEY)
        stamp, schemas = _stored(stored, self._client.service_root)
        try:
            changes = self._client.schema_changes(self._entities, stamp)
        except CrmsyncError:
            return  # the org cannot say: every schema is read as before
        self._stamp = changes.stamp or None
        for name, schema in schemas.items():
            if name in changes.changed or touched_by(schema, changes.deleted_ids):
                continue
            if self._client.cached_schema(name) is None:
                self._client.remember_schema(schema)

    def after_reads(self) -> None:
        """Store the schemas the cycle uses with the stamp taken before they were read."""
        if self._stamp is None:
            return
        schemas = [self._client.cached_schema(name) for name in self._entities]
        present = [schema for schema in schemas if schema is not None]
        if len(present) != len(schemas):
            return
        value: dict[str, object] = {
            "format": FORMAT,
            "service_root": self._client.service_root,
            "stamp": self._stamp,
            "schemas": {schema.logical_name: schema_to_json(schema) for schema in present},
        }
        with self._engine.begin() as conn:
            set_setting(conn, SETTING_KEY, value)
        self._stamp = None


def _stored(value: Any, service_root: str) -> tuple[str | None, dict[str, EntitySchema]]:
    """The stored stamp and schemas, if they are for this org and readable."""
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        return None, {}
    if value.get("service_root") != service_root or not isinstance(value.get("stamp"), str):
        return None, {}
    try:
        schemas = {
            str(name): schema_from_json(document)
            for name, document in dict(value.get("schemas") or {}).items()
        }
    except (KeyError, TypeError, ValueError):
        return None, {}
    return str(value["stamp"]), schemas
