"""The fallback ranking (current practice) on a small generated town; seconds."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from stratum_ml.features.build import build_features
from stratum_ml.features.population import CURRENT_PRACTICE_FEATURE, population_queries
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.scoring.fallback import fallback_ranking
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.synthetic.generate import GeneratorConfig, Municipality, generate_tables
from stratum_ml.synthetic.truth import truth_at

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def town() -> Municipality:
    return generate_tables(GeneratorConfig(n_addresses=2000, seed=5))


def _scorer(town: Municipality, features: list[str]) -> Scorer:
    queries = population_queries(town.sources.addresses, pd.Timestamp("2025-06-01"))
    X = build_features(town.sources, queries, features=features)
    y = truth_at(town.truth, X.index, "2025-06-01").astype(int)
    params = LightGBMParams(n_estimators=20, early_stopping_rounds=5)
    model = RiskModel(params, "sigmoid", seed=0).fit(X, y, X_tune=X, y_tune=y)
    return Scorer.from_sources(model, town.sources, AS_OF)


@pytest.mark.parametrize(
    "features",
    [["floor_area_m2", CURRENT_PRACTICE_FEATURE], ["floor_area_m2", "registered_persons"]],
    ids=["model holds the feature", "computed from the tables"],
)
def test_fallback_ranks_by_reports_in_the_past_year(
    town: Municipality, features: list[str]
) -> None:
    scorer = _scorer(town, features)
    ranking = fallback_ranking(scorer, town.sources)
    assert set(ranking.index) == set(scorer.table.index)
    assert ranking["rank"].tolist() == list(range(1, len(scorer) + 1))
    # reports counted as of the scoring date, exactly as the feature code counts them
    queries = population_queries(town.sources.addresses, pd.Timestamp(AS_OF))
    expected = build_features(town.sources, queries, features=[CURRENT_PRACTICE_FEATURE])
    reports = expected[CURRENT_PRACTICE_FEATURE].reindex(ranking.index).to_numpy()
    assert (ranking["reports_past_year"].to_numpy() == reports).all()
    assert ranking["reports_past_year"].max() > 0
    # most reports first; ties broken by address id
    key = list(zip(-ranking["reports_past_year"], ranking.index, strict=True))
    assert key == sorted(key)
    assert ranking["percentile"].iloc[0] == 100.0
    places = scorer.table.reindex(ranking.index)
    assert (ranking["district"].to_numpy() == places["district"].to_numpy()).all()


def test_fallback_ignores_the_model(town: Municipality) -> None:
    scorer = _scorer(town, ["floor_area_m2", CURRENT_PRACTICE_FEATURE])
    ranking = fallback_ranking(scorer, town.sources)
    model_order = scorer.table.index.to_numpy()
    assert not np.array_equal(ranking.index.to_numpy(), model_order)
