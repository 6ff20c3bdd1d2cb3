"""The final fit on every labelled visit: rounds and calibration by address-grouped folds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.training.config import RunConfig
from stratum_ml.training.refit import (
    _folds,
    plan_weighting_sentence,
    plan_weights,
    refit_on_all_visits,
)

CONFIG = RunConfig(lightgbm=LightGBMParams(n_estimators=300, early_stopping_rounds=20, n_jobs=1))


def _visits(seed: int = 0, n: int = 3000) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "water_ratio_to_expected": rng.lognormal(0, 0.5, n),
            "reports_all_365d": rng.poisson(0.4, n),
            "tenure": pd.Categorical(rng.choice(["owner_occupied", "private_rent"], n)),
        }
    )
    logit = (
        -2.0
        + 2.0 * np.log(X["water_ratio_to_expected"])
        + 0.7 * X["reports_all_365d"]
        + 0.5 * (X["tenure"] == "private_rent")
    )
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int))
    visits = pd.DataFrame(
        {
            "address_id": [f"A{i:04d}" for i in rng.integers(0, n // 3, n)],
            "inspected_at": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "reason": rng.choice(["report", "random_sample", "project"], n),
        }
    )
    return X, y, visits


def test_folds_keep_every_address_in_one_fold() -> None:
    _, _, visits = _visits()
    groups = visits["address_id"].to_numpy()
    folds = _folds(groups, 5)
    assert len(folds) == 5
    for fit_rows, check_rows in folds:
        assert not set(groups[fit_rows]) & set(groups[check_rows])
    assert sorted(np.concatenate([c for _, c in folds]).tolist()) == list(range(len(groups)))


def test_the_final_fit_uses_every_visit_with_cross_fitted_rounds_and_calibration() -> None:
    X, y, visits = _visits()
    parts = pd.Series(np.where(np.arange(len(y)) < 2000, "train", "holdout"))
    final = refit_on_all_visits(X, y, visits, CONFIG, parts=parts, n_folds=4)

    assert final.n_visits == len(y) and final.n_violations == int(y.sum())
    assert final.visits_by_part == {"holdout": 1000, "train": 2000}
    assert sum(final.visits_by_reason.values()) == len(y)
    assert final.fit_from == str(visits["inspected_at"].min().date())
    assert final.fit_until == str(visits["inspected_at"].max().date())
    assert len(final.fold_rounds) == 4 and all(1 <= r < 300 for r in final.fold_rounds)
    assert final.n_rounds == math.ceil(np.mean(final.fold_rounds) * 4 / 3)
    model = final.model
    assert model.booster_.current_iteration() == final.n_rounds == model.best_iteration_
    # calibrated on out-of-fold scores: the mean probability matches the violation rate
    p = model.predict_risk(X)
    assert abs(p.mean() - y.mean()) < 0.03
    assert 0 < final.oof_log_loss < math.log(2)
    params = final.to_params()
    assert params["final_fit.n_visits"] == len(y)
    assert params["final_fit.n_holdout"] == 1000
    assert params["final_fit.n_rounds"] == final.n_rounds


def test_more_visits_give_a_model_at_least_as_good_on_new_visits() -> None:
    """The point of the final fit: the visits the split held back improve the trees."""
    X, y, visits = _visits(seed=1, n=6000)
    X_new, y_new, _ = _visits(seed=2, n=4000)
    first = slice(0, 1500)
    split = RiskModel(CONFIG.lightgbm, CONFIG.calibration).fit(
        X.iloc[first], y.iloc[first], X_tune=X.iloc[1500:2000], y_tune=y.iloc[1500:2000]
    )
    final = refit_on_all_visits(X, y, visits, CONFIG, n_folds=5).model

    def log_loss(model: RiskModel) -> float:
        p = np.clip(model.predict_risk(X_new), 1e-9, 1 - 1e-9)
        return float(-np.mean(y_new * np.log(p) + (1 - y_new) * np.log(1 - p)))

    assert log_loss(final) <= log_loss(split)


def test_one_outcome_or_one_address_is_refused() -> None:
    X, y, visits = _visits(n=300)
    with pytest.raises(ValueError, match="with and without a violation"):
        refit_on_all_visits(X, pd.Series(np.zeros(len(y), int)), visits, CONFIG)
    with pytest.raises(ValueError, match="two addresses"):
        refit_on_all_visits(X, y, visits.assign(address_id="A1"), CONFIG)
    with pytest.raises(ValueError, match="n_rounds"):
        RiskModel().fit_rounds(X, y, n_rounds=0, calibrator=None)  # type: ignore[arg-type]


def test_plan_weights_are_the_inverse_inclusion_probability_of_plan_visits_only() -> None:
    visits = pd.DataFrame({"inclusion_probability": [1.0, 0.25, np.nan, 0.01]})
    assert plan_weights(visits, "none").tolist() == [1, 1, 1, 1]
    assert plan_weights(visits, "inverse_inclusion").tolist() == [1, 4, 1, 100]
    assert plan_weights(visits.drop(columns="inclusion_probability"), "inverse_inclusion").tolist()
    with pytest.raises(ValueError, match="outside"):
        plan_weights(pd.DataFrame({"inclusion_probability": [0.0]}), "inverse_inclusion")
    with pytest.raises(ValueError, match="plan_visit_weighting"):
        plan_weights(visits, "ipw")


def test_the_weighted_loss_of_plan_visits_is_unbiased_for_the_population_loss() -> None:
    """E[sum_{i in S} l_i / pi_i] = sum_i l_i over many plans drawn by the design."""
    from stratum_ml.runs.plan import draw_plan

    rng = np.random.default_rng(5)
    population, capacity = 2000, 100
    loss = rng.exponential(1.0, population) * (1 + 3 * (np.arange(population) < 300))
    weighted, plain = [], []
    for seed in range(1500):
        plan = draw_plan(population, capacity, 0.3, seed=seed)
        picked = loss[plan["rank"].to_numpy() - 1]
        w = plan_weights(plan, "inverse_inclusion")
        weighted.append(float((w * picked).sum()))
        plain.append(float(picked.sum()) * population / capacity)
    values = np.array(weighted)
    assert abs(values.mean() - loss.sum()) < 4 * values.std() / np.sqrt(len(values))
    # unweighted, the plan's visits over-represent the top of the list: biased upwards here
    assert np.mean(plain) > 1.5 * loss.sum()


def test_the_refit_weighs_plan_visits_under_inverse_inclusion() -> None:
    X, y, visits = _visits(n=1500)
    pi = np.where(np.arange(len(y)) % 3 == 0, 0.1, np.nan)
    visits = visits.assign(inclusion_probability=pi)
    plain = refit_on_all_visits(X, y, visits, CONFIG, n_folds=3)
    weighted = refit_on_all_visits(
        X,
        y,
        visits,
        CONFIG.model_copy(update={"plan_visit_weighting": "inverse_inclusion"}),
        n_folds=3,
    )
    assert plain.plan_weighting == "none" and plain.max_plan_weight == 1.0
    assert weighted.plan_weighting == "inverse_inclusion"
    assert weighted.n_plan_visits == plain.n_plan_visits == 500
    assert weighted.max_plan_weight == pytest.approx(10.0)
    assert weighted.to_params()["final_fit.plan_weighting"] == "inverse_inclusion"
    assert not np.allclose(plain.model.raw_score(X), weighted.model.raw_score(X))


def test_the_card_says_how_plan_visits_were_weighted_and_why() -> None:
    X, y, visits = _visits(n=900)
    visits = visits.assign(inclusion_probability=np.where(np.arange(len(y)) < 90, 0.02, np.nan))
    weighted = refit_on_all_visits(
        X,
        y,
        visits,
        CONFIG.model_copy(update={"plan_visit_weighting": "inverse_inclusion"}),
        n_folds=3,
    )
    said = plan_weighting_sentence(weighted)
    assert "90 of its 900 visits answered a visit plan" in said
    assert "largest weight 50" in said and "Horvitz-Thompson" in said and "variance" in said
    assert "keep weight 1 and are not unbiased" in said
    plain = plan_weighting_sentence(refit_on_all_visits(X, y, visits, CONFIG, n_folds=3))
    assert "plan_visit_weighting: none" in plain and "refit_weighting.md" in plain
