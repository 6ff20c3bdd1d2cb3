"""The scorer on a small generated town with a real (small) LightGBM model; seconds."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from stratum_ml.features.build import build_features
from stratum_ml.features.population import is_dwelling, population_queries
from stratum_ml.features.registry import FeatureParams
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.scoring.scorer import Scorer, feature_params_of
from stratum_ml.synthetic.generate import GeneratorConfig, Municipality, generate_tables
from stratum_ml.synthetic.truth import truth_at

FEATURES = [
    "floor_area_m2",
    "tenure",
    "registered_persons",
    "m2_per_registered_person",
    "water_ratio_to_expected",
    "reports_all_365d",
]
AS_OF = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def town() -> Municipality:
    return generate_tables(GeneratorConfig(n_addresses=3000, seed=11))


def _labelled(town: Municipality, on: str) -> tuple[pd.DataFrame, np.ndarray]:
    queries = population_queries(town.sources.addresses, pd.Timestamp(on))
    X = build_features(town.sources, queries, features=FEATURES)
    return X, truth_at(town.truth, X.index, on).astype(int)


@pytest.fixture(scope="module")
def scorer(town: Municipality) -> Scorer:
    X, y = _labelled(town, "2025-06-01")
    X_tune, y_tune = _labelled(town, "2025-12-01")
    params = LightGBMParams(n_estimators=60, early_stopping_rounds=10)
    model = RiskModel(params, "sigmoid", seed=0).fit(X, y, X_tune=X_tune, y_tune=y_tune)
    return Scorer.from_sources(model, town.sources, AS_OF)


def test_every_dwelling_is_ranked_once_and_nothing_else(scorer: Scorer, town: Municipality) -> None:
    a = town.sources.addresses
    dwellings = set(a.loc[is_dwelling(a["use_purpose"]), "address_id"])
    assert set(scorer.table.index) == dwellings and len(scorer) == len(dwellings)
    assert scorer.table["rank"].tolist() == list(range(1, len(scorer) + 1))
    other = a.loc[~is_dwelling(a["use_purpose"]), "address_id"].iloc[0]
    assert other not in scorer


def test_rank_follows_the_raw_score_and_probability_is_calibrated(scorer: Scorer) -> None:
    t = scorer.table
    assert t["raw_score"].is_monotonic_decreasing
    assert t["probability"].is_monotonic_decreasing
    assert t["probability"].between(0.0, 1.0).all()
    assert t["percentile"].iloc[0] == pytest.approx(100.0)
    assert scorer.as_of == AS_OF


def test_score_explains_known_ids_and_names_unknown_ones(scorer: Scorer) -> None:
    first, second = scorer.table.index[:2]
    scored, unknown = scorer.score([second, "0000000000000000", first, second], n_reasons=2)
    assert [s.address_id for s in scored] == [second, first]
    assert unknown == ["0000000000000000"]
    assert all(1 <= len(s.reasons) <= 2 for s in scored)
    assert scored[1].rank == 1


def test_explain_adds_up_to_the_raw_score(scorer: Scorer) -> None:
    address = str(scorer.table.index[5])
    scored, bias = scorer.explain(address)
    total = bias + sum(r.contribution for r in scored.reasons)
    assert total == pytest.approx(scored.raw_score, abs=1e-6)


def test_priority_list_filters_and_keeps_rank_order(scorer: Scorer) -> None:
    district = str(scorer.table["district"].iloc[0])
    top = scorer.priority_list(10, district=district)
    assert 0 < len(top) <= 10
    assert all(s.district == district for s in top)
    assert [s.rank for s in top] == sorted(s.rank for s in top)
    cut = float(scorer.table["probability"].iloc[20])
    assert all(s.probability >= cut for s in scorer.priority_list(50, min_probability=cut))


def test_to_frame_explains_only_the_top_k(scorer: Scorer) -> None:
    frame = scorer.to_frame(5)
    assert len(frame) == len(scorer)
    assert frame["reason_1"].head(5).notna().all()
    assert frame["reason_1"].iloc[5:].isna().all()
    assert (frame["scored_as_of"] == str(AS_OF)).all()


def test_a_model_needing_an_absent_table_is_refused(scorer: Scorer, town: Municipality) -> None:
    import dataclasses

    without_water = dataclasses.replace(town.sources, water_usage=None)
    with pytest.raises(ValueError, match="water_ratio_to_expected"):
        Scorer.from_sources(scorer.model, without_water, AS_OF)


def test_features_are_computed_with_the_params_the_model_was_trained_with(
    town: Municipality,
) -> None:
    """A model trained with non-default feature constants is scored with the same ones."""
    params = FeatureParams(short_stay_days=60, water_m3_per_person_year=30.0)
    names = ["short_stay_share_24m", "water_ratio_to_expected"]
    queries = population_queries(town.sources.addresses, pd.Timestamp("2025-06-01"))
    X = build_features(town.sources, queries, features=names, params=params)
    y = truth_at(town.truth, X.index, "2025-06-01").astype(int)
    lgb = LightGBMParams(n_estimators=20, early_stopping_rounds=5)
    model = RiskModel(lgb, "sigmoid", seed=0).fit(X, y, X_tune=X, y_tune=y)
    model.metadata_ = {"feature_params": params.model_dump(mode="json")}
    assert feature_params_of(model) == params

    scored = Scorer.from_sources(model, town.sources, AS_OF)
    expected = build_features(
        town.sources,
        population_queries(town.sources.addresses, pd.Timestamp(AS_OF)),
        features=names,
        params=params,
    )
    default = build_features(
        town.sources,
        population_queries(town.sources.addresses, pd.Timestamp(AS_OF)),
        features=names,
    )
    pd.testing.assert_frame_equal(scored.features.sort_index(), expected.sort_index())
    assert not scored.features.sort_index().equals(default.sort_index())
    assert "60" in scored.catalogue["short_stay_share_24m"].description


def test_a_model_without_recorded_params_is_scored_with_the_defaults(scorer: Scorer) -> None:
    assert feature_params_of(scorer.model) == FeatureParams()
