"""The engine of the operational store: SQLite by default, PostgreSQL for teams.

SQLite (``sqlite:///<STRATUM_HOME>/stratum.db``, embedded, nothing to start):
the file is created with mode 0600 (its ``-wal`` and ``-shm`` files follow the
file's mode), and every connection sets ``journal_mode=WAL`` (readers never
wait for a writer), ``foreign_keys=ON`` and ``busy_timeout``. Each transaction
starts with ``BEGIN IMMEDIATE``: a writer takes the write lock at the start, so
two service workers never fail half-way on a lock upgrade; they wait their turn
(up to the busy timeout). A read-only transaction (an engine with the execution
option :data:`READ_ONLY`, :meth:`stratum_ml.store.Store.reading`) starts with a
plain ``BEGIN`` instead: it reads a snapshot and neither waits for a writer nor
holds one up, which is what the service's per-request checks need.

PostgreSQL (``postgresql+psycopg://user@host/db``; a plain ``postgresql://`` URL
is read as psycopg 3): for more than one service machine or worker.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

#: how long a SQLite writer waits for another one, in milliseconds
BUSY_TIMEOUT_MS = 10_000


class StoreError(RuntimeError):
    """The operational store cannot be opened or used; the message says why and what to do."""


def redacted(url: str | URL) -> str:
    """A database URL fit for messages and logs: the password is hidden.

    Examples
    --------
    >>> redacted("postgresql+psycopg://stratum:secret@db:5432/stratum")
    'postgresql+psycopg://stratum:***@db:5432/stratum'
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"


def parse_url(url: str) -> URL:
    """The URL, with ``postgresql://`` read as psycopg 3; a StoreError for anything else.

    Examples
    --------
    >>> parse_url("postgresql://u@h/db").drivername
    'postgresql+psycopg'
    >>> parse_url("sqlite:///state/stratum.db").database
    'state/stratum.db'
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError("STRATUM_DATABASE_URL is not a database URL") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise StoreError(
            f"unsupported database {parsed.drivername!r} in STRATUM_DATABASE_URL "
            f"({redacted(parsed)}); use sqlite:///PATH or postgresql+psycopg://..."
        )
    return parsed


def _create_private_file(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # autocommit at the driver level: SQLAlchemy's "begin" event below opens transactions
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


#: the execution option that marks a read-only transaction (a deferred ``BEGIN`` on SQLite)
READ_ONLY = "stratum_read_only"


def _on_sqlite_begin(connection: Any) -> None:
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_store_engine(url: str) -> Engine:
    """An engine for the operational store at ``url`` (see the module docstring).

    Parameters
    ----------
    url
        ``sqlite:///PATH`` or ``postgresql+psycopg://...`` (``postgresql://`` is
        read as psycopg 3). A SQLite file is created (mode 0600) with its folder.

    Returns
    -------
    sqlalchemy.Engine

    Raises
    ------
    StoreError
        For a URL that is not one of the two databases.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        raise StoreError("the operational store needs a SQLite file, not an in-memory database")
    _create_private_file(Path(parsed.database))
    engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine
