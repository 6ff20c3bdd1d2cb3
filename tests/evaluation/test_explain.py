"""Contributions in percentage points of the chance: they add up to chance minus base chance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratum_ml.evaluation.explain import (
    all_reasons,
    base_chance,
    probability_contributions,
    top_reasons,
)
from stratum_ml.features.catalogue import load_catalogue
from stratum_ml.features.wording import format_chance, format_points
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel


@pytest.fixture(scope="module", params=["sigmoid", "isotonic"])
def fitted(request: pytest.FixtureRequest) -> tuple[RiskModel, pd.DataFrame]:
    rng = np.random.default_rng(1)
    n = 2_000
    X = pd.DataFrame(
        {
            "water_ratio_to_expected": rng.lognormal(0, 0.6, n),
            "registered_persons": rng.integers(0, 6, n).astype(float),
            "water_use_without_registration": (rng.random(n) < 0.1).astype(float),
        }
    )
    logit = 1.5 * np.log(X["water_ratio_to_expected"]) + 2 * X["water_use_without_registration"] - 2
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = RiskModel(LightGBMParams(n_jobs=1), calibration=request.param).fit(
        X.iloc[:1500], y.iloc[:1500], X_tune=X.iloc[1500:], y_tune=y.iloc[1500:]
    )
    return model, X.iloc[:300]


def test_points_add_up_to_chance_minus_base_chance(fitted: tuple[RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    contrib = model.contributions(X)
    points = probability_contributions(contrib, model.calibrator_)
    assert list(points.columns) == list(X.columns) and points.index.equals(X.index)
    base = base_chance(contrib, model.calibrator_)
    chance = model.predict_risk(X)
    np.testing.assert_allclose(points.sum(axis=1), 100 * (chance - base), atol=1e-9)
    logits = contrib.drop(columns="bias").to_numpy()
    pp = points.to_numpy()
    assert np.all((pp == 0) | (np.sign(pp) == np.sign(logits)))  # a raise stays a raise
    assert np.abs(pp).max() <= 100


def test_reasons_carry_points_and_keep_log_odds(fitted: tuple[RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    catalogue = load_catalogue()
    contrib = model.contributions(X.iloc[:20])
    top = top_reasons(contrib, X.iloc[:20], catalogue, n=3, calibrator=model.calibrator_)
    points = probability_contributions(contrib, model.calibrator_)
    for row, reasons in zip(X.index[:20], top, strict=True):
        for r in reasons:
            assert r.contribution == pytest.approx(contrib.at[row, r.feature])
            assert r.contribution_pp == pytest.approx(points.at[row, r.feature])
            assert r.to_dict()["contribution_pp"] == r.contribution_pp
    every = all_reasons(contrib.iloc[0], X.iloc[0], catalogue, "nl", model.calibrator_)
    total = sum(r.contribution_pp or 0.0 for r in every)
    base = base_chance(contrib, model.calibrator_)
    assert total == pytest.approx(100 * (model.predict_risk(X.iloc[:1])[0] - base))
    assert top_reasons(contrib, X.iloc[:20], catalogue)[0][0].contribution_pp is None


def test_chances_and_points_in_words() -> None:
    assert format_chance(0.9432405105428384, "nl") == "94%"
    assert format_chance(0.99981, "en") == "100.0%"
    assert format_points(2.25, "nl") == "+2,2 procentpunt"
    assert format_points(-12.0, "en") == "-12.0 percentage points"
