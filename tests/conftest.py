"""Shared fixtures: a small generated municipality, made once per test session."""

from __future__ import annotations

import pytest

from stratum_ml.synthetic.generate import GeneratorConfig, Municipality, generate_tables

#: large enough for a model to learn and for random-sample visits to exist, small
#: enough for 2 cores
SMALL_TOWN = GeneratorConfig(n_addresses=12_000, seed=3)


@pytest.fixture(scope="session")
def small_town() -> Municipality:
    """A generated municipality (in memory) shared by the data, feature and model tests."""
    return generate_tables(SMALL_TOWN)
