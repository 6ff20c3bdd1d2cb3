"""The fairness frontier: GridSearch with false-positive-rate parity, on a planted disparity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.training.frontier import fit_frontier, frontier_plot, innocent_per_visits

PARAMS = LightGBMParams(n_estimators=200, early_stopping_rounds=20, n_jobs=1)


def _visits(seed: int, n: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Prevalence differs by group and a proxy tells the group: the plain model selects
    innocent households of group True more often (a planted disparity)."""
    rng = np.random.default_rng(seed)
    group = pd.Series(rng.random(n) < 0.35, name="any_resident_born_outside_europe")
    signal = rng.normal(0, 1, n)
    logit = 1.5 * signal - 2.0 + 1.5 * group.to_numpy()
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int))
    X = pd.DataFrame(
        {
            "signal": signal + rng.normal(0, 1.0, n),
            "proxy": group.to_numpy() * 1.5 + rng.normal(0, 0.5, n),
            "tenure": pd.Categorical(rng.choice(["owner_occupied", "private_rent"], n)),
        }
    )
    return X, y, group


def _fpr_gap(model: RiskModel, X: pd.DataFrame, y: pd.Series, group: pd.Series) -> float:
    selected = model.raw_score(X) >= np.quantile(model.raw_score(X), 0.8)
    innocent = y.to_numpy() == 0
    rates = [selected[innocent & (group.to_numpy() == g)].mean() for g in (True, False)]
    return abs(rates[0] - rates[1])


@pytest.fixture(scope="module")
def frontier() -> tuple[RiskModel, list, tuple]:  # type: ignore[type-arg]
    X, y, group = _visits(0, 4000)
    X_tune, y_tune, _ = _visits(1, 1500)
    plain = RiskModel(PARAMS, "sigmoid").fit(X, y, X_tune=X_tune, y_tune=y_tune)
    points = fit_frontier(X, y, group, X_tune, y_tune, plain, grid_size=7)
    return plain, points, _visits(2, 6000)


def test_the_points_run_along_the_multiplier_and_never_read_the_attribute(
    frontier: tuple,  # type: ignore[type-arg]
) -> None:
    plain, points, (X_new, _, _) = frontier
    assert len(points) == 7
    assert [p.point for p in points] == list(range(7))
    multipliers = [p.multiplier for p in points]
    assert multipliers == sorted(multipliers) and min(multipliers) < 0 < max(multipliers)
    for point in points:
        assert point.model.feature_names_in_ == plain.feature_names_in_
        assert "any_resident_born_outside_europe" not in point.model.feature_names_in_
        p = point.model.predict_risk(X_new)  # scores without the attribute
        assert ((p > 0) & (p < 1)).all()


def test_some_point_treats_innocent_households_more_equally_than_the_plain_model(
    frontier: tuple,  # type: ignore[type-arg]
) -> None:
    plain, points, (X_new, y_new, group_new) = frontier
    gaps = [_fpr_gap(p.model, X_new, y_new, group_new) for p in points]
    unconstrained = _fpr_gap(plain, X_new, y_new, group_new)
    assert min(gaps) < 0.5 * unconstrained, (gaps, unconstrained)
    assert max(gaps) > min(gaps) + 0.05  # the frontier spans a real choice


def test_innocent_households_are_counted_per_group_and_scaled_to_the_visits() -> None:
    scores = np.array([9.0, 8, 7, 6, 5, 4, 3, 2])
    labels = np.array([1.0, 0, np.nan, 0, 1, 0, 0, 0])
    groups = pd.Series(["a", "a", "b", "b", "a", "b", None, "a"])
    counts = innocent_per_visits(scores, labels, groups, k=4, per=500)
    # top 4: a(1), a(0), b(?), b(0): group a 2 selected, half innocent; group b 2, all of
    # the visited one innocent
    assert counts == {"a": pytest.approx(2 * 0.5 * 500 / 4), "b": pytest.approx(2 * 1 * 500 / 4)}
    none_visited = innocent_per_visits(scores, np.full(8, np.nan), groups, k=4)
    assert all(np.isnan(v) for v in none_visited.values())


def test_the_plot_marks_the_points_and_the_model() -> None:
    table = pd.DataFrame(
        {
            "kind": ["model", "current_practice", "frontier", "frontier"],
            "point": [None, None, 0, 1],
            "precision": [0.5, np.nan, 0.45, 0.4],
            "precision_low": [0.4, np.nan, 0.35, 0.3],
            "precision_high": [0.6, np.nan, 0.55, 0.5],
            "fpr_ratio": [2.0, np.nan, 1.5, 1.0],
        }
    )
    figure = frontier_plot(table, k=100, attribute="any_resident_born_outside_europe")
    ax = figure.axes[0]
    assert "precision@100" in ax.get_ylabel()
    assert len(ax.texts) == 2  # each point numbered


def test_a_frontier_needs_two_points_and_two_groups() -> None:
    X, y, group = _visits(3, 500)
    plain = RiskModel(PARAMS, "sigmoid").fit(X, y, X_tune=X, y_tune=y)
    with pytest.raises(ValueError, match="at least 2 grid points"):
        fit_frontier(X, y, group, X, y, plain, grid_size=1)
    with pytest.raises(ValueError, match="one group only"):
        fit_frontier(X, y, group & False, X, y, plain, grid_size=3)
