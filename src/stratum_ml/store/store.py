"""The operational store as the rest of the package uses it: open once, then transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from stratum_ml.store.engine import READ_ONLY, StoreError, create_store_engine, redacted
from stratum_ml.store.migrate import upgrade


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

    def close(self) -> None:
        """Close the store's connections."""
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
