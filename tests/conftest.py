"""Shared fixtures: a small generated municipality and a PostgreSQL server, once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratum_ml.store import Store, open_store
from stratum_ml.synthetic.generate import GeneratorConfig, Municipality, generate_tables
from tests.pg_server import PostgresServer, PostgresUnavailable

#: large enough for a model to learn and for random-sample visits to exist, small
#: enough for 2 cores
SMALL_TOWN = GeneratorConfig(n_addresses=12_000, seed=3)


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    """The command line makes its process's umask 077; a test leaves the suite's as it was."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.fixture(scope="session")
def small_town() -> Municipality:
    """A generated municipality (in memory) shared by the data, feature and model tests."""
    return generate_tables(SMALL_TOWN)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (see ``tests/pg_server.py``).

    Fails, never skips, when no server can be started: the store must be tested on it.
    """
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.fail(f"cannot start the test PostgreSQL server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


#: the databases the operational store runs on; store tests run on each
DATABASES = ("sqlite", "postgresql")


@pytest.fixture(params=DATABASES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty operational store: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stratum.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.database_url()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An opened, migrated, empty operational store on each database."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
