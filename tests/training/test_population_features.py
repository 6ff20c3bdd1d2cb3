"""The population the training run scores: a large one a partition at a time, the same features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratum_ml.features import partitioned
from stratum_ml.features.build import build_features
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.features.population import population_queries
from stratum_ml.synthetic import GeneratorConfig, generate_tables
from stratum_ml.training.config import RunConfig
from stratum_ml.training.train import population_features


def test_a_large_population_is_built_by_partition_with_the_same_features(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    town = generate_tables(GeneratorConfig(n_addresses=3_000, seed=4))
    queries = population_queries(town.sources.addresses, pd.Timestamp("2025-06-01"))
    features = list(FeatureSet.default().features)
    config = RunConfig()
    calls: list[int] = []
    real = partitioned.build_features_partitioned

    def counted(*args: object, **kwargs: object) -> pd.DataFrame:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(partitioned, "build_features_partitioned", counted)
    small = population_features(town.sources, queries, features, config)
    assert calls == []  # below a partition's worth of queries: in memory
    monkeypatch.setattr(partitioned, "QUERIES_PER_PARTITION", len(queries) // 3)
    large = population_features(town.sources, queries, features, config)
    assert calls == [1]
    expected = build_features(
        town.sources, queries, features=features, params=config.feature_params
    )
    pd.testing.assert_frame_equal(small, expected)
    assert list(large.columns) == list(expected.columns)
    assert large.index.equals(expected.index)
    for name in expected.columns:
        a, b = large[name], expected[name]
        if pd.api.types.is_float_dtype(b):
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9)
        else:
            pd.testing.assert_series_equal(a, b)
