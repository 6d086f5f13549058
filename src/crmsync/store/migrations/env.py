"""Alembic environment of crmsync, run by :func:`crmsync.store.db.upgrade_database`.

The caller passes an open SQLAlchemy connection in ``config.attributes["connection"]``; there
is no ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from crmsync.store.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("crmsync migrations run through crmsync.store.db.upgrade_database")
_run(_connection)
