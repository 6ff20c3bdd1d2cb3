"""The operational store as the rest of the package uses it: open once, then transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from stratum_ml.store.engine import READ_ONLY, StoreError, create_store_engine, redacted
from stratum_ml.store.migrate import upgrade

T = TypeVar("T")

#: most reads a :class:`ReadMemo` keeps (it forgets them all when the store changes)
MEMO_SIZE = 1024


class ReadMemo:
    """Small reads kept until anything is committed to a SQLite store, by any process.

    SQLite's ``PRAGMA data_version`` on a connection of the memo's own (which never
    writes) changes whenever another connection, in this process or another, commits to
    the file; one such pragma costs microseconds, where a read transaction through the
    ORM costs a millisecond. A read is kept with the version seen *before* it was made,
    so a commit that races with it is seen by the next call. Without a SQLite file
    (PostgreSQL), every call reads.

    Parameters
    ----------
    database
        The SQLite file, or None to keep nothing.
    """

    def __init__(self, database: Path | None) -> None:
        self._lock = threading.Lock()
        self._reads: dict[Hashable, tuple[int, Any]] = {}
        self._connection = (
            None
            if database is None
            else sqlite3.connect(
                f"{database.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        )

    def _version(self) -> int | None:
        """The file's data version; None (read every time) without one or on an error."""
        with self._lock:
            if self._connection is None:
                return None
            try:
                row = self._connection.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return None
        return int(row[0])

    def read(self, key: Hashable, read: Callable[[], T]) -> T:
        """``read()``, or what it gave under ``key`` when nothing was committed since."""
        version = self._version()
        if version is None:
            return read()
        with self._lock:
            kept = self._reads.get(key)
        if kept is not None and kept[0] == version:
            value: T = kept[1]
            return value
        value = read()
        with self._lock:
            if len(self._reads) >= MEMO_SIZE:
                self._reads.clear()
            self._reads[key] = (version, value)
        return value

    def close(self) -> None:
        """Close the memo's connection; later calls read every time."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            self._reads.clear()


class Store:
    """An opened, migrated operational store.

    Parameters
    ----------
    engine
        Its engine (:func:`~stratum_ml.store.create_store_engine`); use
        :func:`open_store`, which also migrates.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._readers = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._memo = ReadMemo(Path(database) if database else None)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return redacted(self.engine.url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session in one read-only transaction: on SQLite it reads a snapshot without
        the write lock, so it neither waits for a writer nor holds one up. Write nothing in it.
        """
        with self._readers() as session, session.begin():
            yield session

    def memo(self, key: Hashable, read: Callable[[], T]) -> T:
        """``read()`` (a small read of the store), or its value kept under ``key`` when
        nothing was committed to the store since (:class:`ReadMemo`): for what every
        request reads, such as the pause and the lock-out of its key."""
        return self._memo.read(key, read)

    def close(self) -> None:
        """Close the store's connections."""
        self._memo.close()
        self.engine.dispose()


def open_store(url: str, *, legacy_home: Path | None = None) -> Store:
    """Open the operational store at ``url``, migrated to the newest revision.

    Parameters
    ----------
    url
        ``Settings.store_url``: ``STRATUM_DATABASE_URL`` or the SQLite file under
        ``STRATUM_HOME``.
    legacy_home
        A stratum home folder whose CSV stores, written by an earlier version, are
        imported on this open and renamed
        (:func:`~stratum_ml.store.legacy_csv.import_legacy_csv`); None to skip.

    Returns
    -------
    Store

    Raises
    ------
    StoreError
        When the database cannot be reached or migrated, or a CSV store cannot be
        imported; the message names the database (password hidden) or the file.
    """
    from stratum_ml.store.legacy_csv import import_legacy_csv

    engine = create_store_engine(url)
    try:
        upgrade(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError(
            f"cannot open the operational store {redacted(engine.url)}: {exc.orig}"
        ) from None
    store = Store(engine)
    if legacy_home is not None:
        import_legacy_csv(store, legacy_home)
    return store
