"""Alembic migrations of the operational store, applied from code.

The migration scripts ship inside the package (``store/migrations``, one file
per revision in ``versions/``); :func:`upgrade` brings a database to the newest
revision in one transaction and is called every time the store is opened
(:func:`stratum_ml.store.open_store`), so no separate command is needed.
``stratum db upgrade`` and ``stratum db current`` do the same by hand.

Two processes that open the store at once do not migrate it twice: on SQLite
the migration transaction holds the write lock (``BEGIN IMMEDIATE``), on
PostgreSQL a transaction-level advisory lock.

A later phase adds its tables in a new revision, ``versions/rev_NNNN_<what>.py``
with ``down_revision`` set to the previous one.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

from stratum_ml.store.engine import StoreError, redacted

#: the Alembic script folder inside the package
MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock key held while migrating ("stratum" in ASCII, as an integer)
ADVISORY_LOCK = 0x7374726174756D


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged scripts, bound to ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of stratum_ml knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its revisions
        raise StoreError(f"no migration scripts in {MIGRATIONS}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision a database is at; None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the database to :func:`head_revision`, in one transaction.

    Parameters
    ----------
    engine
        The operational store's engine (:func:`stratum_ml.store.create_store_engine`).

    Returns
    -------
    str
        The revision the database is at afterwards.

    Raises
    ------
    StoreError
        When the database was migrated by a newer version of stratum_ml (a revision
        this one does not know), or a migration fails; nothing is changed then.
    """
    head = head_revision()
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK}
                )
            command.upgrade(alembic_config(connection), "head")
    except CommandError as exc:
        raise StoreError(
            f"cannot migrate the operational store {redacted(engine.url)}: {exc}. It may have "
            f"been migrated by a newer stratum_ml; this version knows revisions up to {head}."
        ) from None
    return head
