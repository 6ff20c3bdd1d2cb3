"""Street names, the city and the areas table label lists; they never become features."""

from __future__ import annotations

import dataclasses

import pandas as pd

from stratum_ml.features.build import build_features
from stratum_ml.features.catalogue import load_catalogue
from stratum_ml.features.population import population_queries
from stratum_ml.features.registry import REGISTRY
from stratum_ml.synthetic import GeneratorConfig, generate_tables

PLACE_COLUMNS = ("street_name", "city")


def test_no_feature_reads_the_areas_table() -> None:
    for name in REGISTRY.features:
        assert "areas" not in REGISTRY.sources_of(name), name


def test_features_are_the_same_without_street_city_and_areas() -> None:
    sources = generate_tables(GeneratorConfig(n_addresses=600, seed=8)).sources
    assert sources.areas is not None
    bare = dataclasses.replace(
        sources, addresses=sources.addresses.drop(columns=list(PLACE_COLUMNS)), areas=None
    )
    as_of = pd.Timestamp("2024-06-01")
    names = tuple(load_catalogue().names)
    full = build_features(sources, population_queries(sources.addresses, as_of), features=names)
    plain = build_features(bare, population_queries(bare.addresses, as_of), features=names)
    pd.testing.assert_frame_equal(full, plain)
    assert not set(full.columns) & {*PLACE_COLUMNS, "areas", "geometry"}
