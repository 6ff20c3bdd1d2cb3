"""The paired difference in precision@k of two rankings on the same random visits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratum_ml.evaluation.metrics import honest_precision_at_k
from stratum_ml.evaluation.paired import paired_precision_at_k


def _town(seed: int, n: int = 5000, visit_rate: float = 0.3) -> tuple[np.ndarray, ...]:
    """Truth, a random-visit mask, and two rankings: a sharp one and a blurred one."""
    rng = np.random.default_rng(seed)
    risk = rng.beta(0.6, 4.0, n)
    truth = (rng.random(n) < risk).astype(float)
    visited = rng.random(n) < visit_rate
    sharp = np.log(risk) + rng.normal(0, 0.3, n)
    blurred = np.log(risk) + rng.normal(0, 1.5, n)
    return truth, visited, sharp, blurred


def _true_precision(scores: np.ndarray, truth: np.ndarray, k: int) -> float:
    top = scores >= np.sort(scores)[::-1][k - 1]
    return float(truth[top].mean())


def test_one_ranking_against_itself_differs_by_exactly_zero() -> None:
    truth, visited, sharp, _ = _town(0)
    cmp = paired_precision_at_k(sharp, sharp, visited, truth, [250, 500], decide_k=250)
    for row in cmp.rows:
        assert row.estimable
        assert row.difference == row.low == row.high == 0.0
        assert row.n_both == row.n_challenger == row.n_champion


def test_each_side_is_the_honest_estimate_when_that_is_not_widened() -> None:
    truth, visited, sharp, blurred = _town(1)
    labels = np.where(visited, truth, np.nan)
    cmp = paired_precision_at_k(sharp, blurred, visited, labels, [250, 500], decide_k=250)
    for row in cmp.rows:
        for scores, est, n in (
            (sharp, row.challenger, row.n_challenger),
            (blurred, row.champion, row.n_champion),
        ):
            honest = honest_precision_at_k(scores, visited, labels, row.k)
            assert not honest.widened
            assert est == honest.estimate and n == honest.n


def test_the_paired_interval_is_narrower_than_two_separate_ones() -> None:
    truth, visited, sharp, _ = _town(2)
    rng = np.random.default_rng(9)
    nearly = sharp + rng.normal(0, 0.05, sharp.size)  # almost the same list
    cmp = paired_precision_at_k(nearly, sharp, visited, truth, [500], decide_k=500)
    d = cmp.decision
    assert d.estimable and d.n_both > 0.8 * d.n_challenger
    separate = (d.challenger_high - d.challenger_low) + (d.champion_high - d.champion_low)
    assert d.high - d.low < 0.5 * separate


def test_a_sharper_ranking_wins_and_the_sides_swap_sign() -> None:
    truth, visited, sharp, blurred = _town(3)
    ahead = paired_precision_at_k(sharp, blurred, visited, truth, [500], decide_k=500).decision
    behind = paired_precision_at_k(blurred, sharp, visited, truth, [500], decide_k=500).decision
    assert ahead.low > 0 and behind.high < 0
    assert ahead.difference == pytest.approx(-behind.difference)


def test_the_interval_covers_the_true_difference_in_most_towns() -> None:
    covered = 0
    seeds = range(40)
    for seed in seeds:
        truth, visited, sharp, blurred = _town(100 + seed, n=4000, visit_rate=0.2)
        d = paired_precision_at_k(
            sharp, blurred, visited, truth, [250], decide_k=250, n_boot=1000, seed=seed
        ).decision
        true = _true_precision(sharp, truth, 250) - _true_precision(blurred, truth, 250)
        covered += d.low <= true <= d.high
    assert covered >= 0.85 * len(seeds), covered


def test_a_k_without_enough_visits_is_not_estimable_and_the_decision_says_where_it_went() -> None:
    truth, visited, sharp, blurred = _town(4, n=20_000, visit_rate=0.01)
    cmp = paired_precision_at_k(sharp, blurred, visited, truth, [50, 100], decide_k=100)
    row = {r.k: r for r in cmp.rows}[100]
    assert not row.estimable
    assert math.isnan(row.difference) and math.isnan(row.low)
    assert "not estimable" in row.describe()
    assert cmp.decision.k > 100 and cmp.decision.estimable
    assert cmp.decision.n_challenger >= 30 and cmp.decision.n_champion >= 30
    assert [r.k for r in cmp.rows] == [50, 100]  # the wider top never takes a k's row


def test_bad_input_is_named() -> None:
    truth, visited, sharp, blurred = _town(5, n=200)
    with pytest.raises(ValueError, match="one length"):
        paired_precision_at_k(sharp, blurred[:-1], visited, truth, [10], decide_k=10)
    with pytest.raises(ValueError, match="outside 1..200"):
        paired_precision_at_k(sharp, blurred, visited, truth, [500], decide_k=10)
    with pytest.raises(ValueError, match="NaN"):
        paired_precision_at_k(np.full(200, np.nan), blurred, visited, truth, [10], decide_k=10)
