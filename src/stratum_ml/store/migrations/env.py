"""Alembic environment of the operational store: runs on the connection it is given.

Called only through :func:`stratum_ml.store.migrate.upgrade` (which passes the
connection, inside its transaction, as ``config.attributes["connection"]``).
SQLite gets batch mode, so that later revisions can alter tables there.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from stratum_ml.store.tables import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "run the store's migrations with `stratum db upgrade` (stratum_ml.store.migrate), "
        "not with the alembic command"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
