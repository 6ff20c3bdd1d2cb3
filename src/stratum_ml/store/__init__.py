"""The operational store: one relational database for what the running system remembers.

Training state lives in MLflow; everything the municipality's process produces
while it runs lives here: analysts' decisions and the visit outcomes recorded
through the service (later also scoring runs, notifications and the pause
switch, each as new tables in new migrations).

``engine``      the SQLAlchemy engine for ``STRATUM_DATABASE_URL``: a SQLite file under
                ``STRATUM_HOME`` by default (WAL, foreign keys, busy timeout, mode 0600),
                or PostgreSQL (``postgresql+psycopg://``).
``tables``      the ORM tables (SQLAlchemy 2, typed) and their vocabularies.
``migrate``     Alembic migrations shipped in ``migrations/``, applied on every open.
``legacy_csv``  the one-off import of the CSV stores written by earlier versions.
``store``       :class:`Store` and :func:`open_store`, what the rest of the package uses.
``free_text``   the person-data check every stored free-text reason passes.
``switch``      the kill switch: pause and resume the model, read its state.

The audit log is not here: it stays an append-only, hash-chained file
(:mod:`stratum_ml.serving.audit`).
"""

from __future__ import annotations

from stratum_ml.store.engine import StoreError, create_store_engine, redacted
from stratum_ml.store.store import Store, open_store

__all__ = ["Store", "StoreError", "create_store_engine", "open_store", "redacted"]
