"""Shared fixtures: a small generated municipality and a PostgreSQL server, once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stratum_ml.synthetic.generate import GeneratorConfig, Municipality, generate_tables
from tests.pg_server import PostgresServer, PostgresUnavailable

#: large enough for a model to learn and for random-sample visits to exist, small
#: enough for 2 cores
SMALL_TOWN = GeneratorConfig(n_addresses=12_000, seed=3)


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
