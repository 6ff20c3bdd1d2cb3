"""Ranking, probability and honest-estimation metrics, and the promotion check."""

from __future__ import annotations

import io
import json
import math
import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from stratum_ml.evaluation import (
    HonestEstimate,
    PromotionCheck,
    bootstrap_ci,
    calibration_table,
    classification_report,
    honest_precision_at_k,
    lift_at_k,
    naive_precision_at_k,
    plot_calibration,
    precision_at_k,
    ranking_report,
    top_k_mask,
    wilson_interval,
)

Y = np.array([1, 0, 1, 0, 0, 1])
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


# --------------------------------------------------------------------------- precision / lift


@pytest.mark.parametrize(("k", "expected"), [(1, 1.0), (2, 0.5), (3, 2 / 3), (4, 0.5), (6, 0.5)])
def test_precision_at_k_by_hand(k: int, expected: float) -> None:
    assert precision_at_k(Y, SCORES, k) == pytest.approx(expected)


def test_precision_at_k_ignores_row_order() -> None:
    order = np.random.default_rng(3).permutation(Y.size)
    assert precision_at_k(Y[order], SCORES[order], 3) == pytest.approx(2 / 3)


def test_ties_are_shared_out_in_expectation() -> None:
    y = np.array([1, 1, 0, 0, 1])
    scores = np.array([3, 2, 2, 2, 1])
    # Row 0 is in for sure; one of the three tied rows fills place 2, a hit 1 time in 3.
    assert precision_at_k(y, scores, 2) == pytest.approx((1 + 1 / 3) / 2)
    # ... which is the average over random tie-breaks.
    draws = [y[top_k_mask(scores, 2, seed=s)].mean() for s in range(3000)]
    assert np.mean(draws) == pytest.approx(2 / 3, abs=0.02)


def test_top_k_mask_selects_exactly_k_and_the_highest() -> None:
    scores = np.array([5.0, 1.0, 5.0, 5.0, 9.0, 0.0])
    masks = [top_k_mask(scores, 3, seed=s) for s in range(50)]
    assert all(m.sum() == 3 and m[4] for m in masks)
    assert not any(m[1] or m[5] for m in masks)
    assert len({tuple(m) for m in masks}) == 3  # the two tied places vary with the seed


def test_lift_by_hand() -> None:
    # Model: precision@1 = 1 over prevalence 0.5; reversed scores put rows 5, 4, 3 first: 1/3.
    assert lift_at_k(Y, SCORES, 1) == pytest.approx(2.0)
    assert lift_at_k(Y, SCORES, 3, baseline_scores=-SCORES) == pytest.approx((2 / 3) / (1 / 3))
    assert math.isnan(lift_at_k(Y, SCORES, 1, baseline_scores=np.array([0, 9, 0, 8, 7, 0])))


def test_ranking_report_by_hand() -> None:
    reports = np.array([0, 2, 1, 0, 0, 0])  # "current practice": rank by number of reports
    table = ranking_report(Y, SCORES, ks=(2, 4, 10), baselines={"current_practice": reports})
    assert list(table.columns) == [
        "k",
        "precision_model",
        "precision_random",
        "precision_current_practice",
        "lift_over_random",
        "lift_over_current_practice",
    ]
    row = table.set_index("k").loc[2]
    assert row["precision_model"] == pytest.approx(0.5)
    assert row["precision_random"] == pytest.approx(0.5)
    assert row["precision_current_practice"] == pytest.approx(0.5)  # rows 1 (0) and 2 (1)
    assert row["lift_over_current_practice"] == pytest.approx(1.0)
    row = table.set_index("k").loc[4]
    # reports: rows 1, 2 above; two of the four tied zeros (rows 0,3,4,5; hits 2 of 4) fill in.
    assert row["precision_current_practice"] == pytest.approx((1 + 2 * 0.5) / 4)
    assert table.set_index("k").loc[10].isna().all()


def test_ranking_report_rejects_reserved_baseline_names() -> None:
    with pytest.raises(ValueError, match="reserved"):
        ranking_report(Y, SCORES, baselines={"random": SCORES})


@pytest.mark.parametrize(
    ("y", "scores", "match"),
    [
        ([1, np.nan, 0], [0.1, 0.2, 0.3], "missing labels"),
        ([1, 2, 0], [0.1, 0.2, 0.3], "only 0 and 1"),
        ([1, 0, 0], [0.1, np.nan, 0.3], "NaN"),
        ([1, 0], [0.1, 0.2, 0.3], "differ in length"),
    ],
)
def test_bad_input_is_refused(y: list[float], scores: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        precision_at_k(y, scores, 1)


def test_k_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        precision_at_k(Y, SCORES, 7)
    with pytest.raises(ValueError, match="positive integer"):
        precision_at_k(Y, SCORES, 0)


# --------------------------------------------------------------------------- probabilities


def _probabilities(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = rng.beta(1, 6, n)
    return (rng.random(n) < proba).astype(int), proba


def test_classification_report_matches_sklearn() -> None:
    y, proba = _probabilities()
    report = classification_report(y, proba)
    assert report["roc_auc"] == pytest.approx(roc_auc_score(y, proba))
    assert report["pr_auc"] == pytest.approx(average_precision_score(y, proba))
    assert report["brier"] == pytest.approx(brier_score_loss(y, proba))
    assert report["log_loss"] == pytest.approx(log_loss(y, proba))
    assert report["prevalence"] == pytest.approx(y.mean())
    assert report["n"] == y.size


def test_classification_report_with_one_class_is_nan_not_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = classification_report([0, 0, 0], [0.1, 0.2, 0.0])
    assert math.isnan(report["roc_auc"]) and math.isnan(report["pr_auc"])
    assert report["brier"] == pytest.approx((0.01 + 0.04) / 3)


@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
def test_calibration_table_matches_sklearn(strategy: str) -> None:
    y, proba = _probabilities()
    table = calibration_table(y, proba, n_bins=8, strategy=strategy)  # type: ignore[arg-type]
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=8, strategy=strategy)
    np.testing.assert_allclose(table["observed_rate"], prob_true)
    np.testing.assert_allclose(table["mean_predicted"], prob_pred)
    assert table["n"].sum() == y.size
    assert (
        (table["ci_low"] <= table["observed_rate"]) & (table["observed_rate"] <= table["ci_high"])
    ).all()


def test_plot_calibration_returns_a_savable_figure() -> None:
    y, proba = _probabilities(500)
    fig = plot_calibration(y, proba, n_bins=5)
    assert isinstance(fig, Figure)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)
    assert all(math.isnan(b) for b in wilson_interval(0, 0))


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_is_seeded_and_covers_the_mean() -> None:
    data = np.random.default_rng(1).normal(10.0, 2.0, 400)
    first = bootstrap_ci(np.mean, data, n_boot=300, seed=7)
    again = bootstrap_ci(np.mean, data, n_boot=300, seed=7)
    assert float(first.low) == float(again.low) and float(first.high) == float(again.high)
    assert float(first.low) < data.mean() < float(first.high)
    # About +-1.96 standard errors.
    assert float(first.high - first.low) == pytest.approx(2 * 1.96 * 2.0 / 20, rel=0.25)


def test_bootstrap_ci_vector_statistic_and_nan_replicates() -> None:
    y = np.array([0.0] * 98 + [1.0] * 2)

    def stat(values: np.ndarray) -> np.ndarray:
        positives = values == 1
        return np.array([values.mean(), values[positives].mean() if positives.any() else np.nan])

    result = bootstrap_ci(stat, y, n_boot=400, seed=0)
    assert result.estimate.shape == result.low.shape == (2,)
    assert result.n_valid[0] == 400
    assert 300 < result.n_valid[1] < 400  # some replicates draw no positive at all (~13%)


def test_bootstrap_ci_frequency_weights_match_expanded_rows() -> None:
    values = np.array([0.0, 1.0, 5.0])
    counts = np.array([300.0, 150.0, 50.0])
    expanded = np.repeat(values, counts.astype(int))
    plain = bootstrap_ci(np.mean, expanded, n_boot=2000, seed=1)
    weighted = bootstrap_ci(
        lambda v, w: np.average(v, weights=w), values, n_boot=2000, seed=2, frequency_weights=counts
    )
    assert float(weighted.estimate) == pytest.approx(expanded.mean())
    assert float(weighted.low) == pytest.approx(float(plain.low), abs=0.03)
    assert float(weighted.high) == pytest.approx(float(plain.high), abs=0.03)


# --------------------------------------------------------------------------- selective labels


def _municipality(seed: int, n: int = 50_000) -> tuple[np.ndarray, ...]:
    """A population with known truth, a 2% random sample and a policy-biased set of visits."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(3.5 - 1.3 * risk))).astype(float)
    scores = risk + rng.normal(0.0, 0.8, n)  # an imperfect model
    random_visit = rng.random(n) < 0.02
    # Earlier policy (tips, reports) finds violations far more often than chance.
    policy_visit = rng.random(n) < np.where(y == 1, 0.5, 0.01)
    return y, scores, random_visit, random_visit | policy_visit


def test_honest_estimate_covers_the_truth_and_naive_does_not() -> None:
    k = 2500
    covered, naive_error = 0, []
    for seed in range(20):
        y, scores, random_visit, visited = _municipality(seed)
        honest = honest_precision_at_k(scores, random_visit, y, k)
        assert not honest.widened and honest.region_k == k
        truth = precision_at_k(y, scores, k)
        covered += honest.ci_low <= truth <= honest.ci_high
        naive = naive_precision_at_k(scores[visited], y[visited], k)
        naive_error.append(naive.estimate - truth)
        assert not naive.ci_low <= truth <= naive.ci_high  # confidently wrong
    assert covered / 20 >= 0.8
    assert min(naive_error) > 0.2  # the naive number is inflated by the visit policy


def test_honest_estimate_widens_when_the_top_k_holds_too_few_random_visits() -> None:
    y, scores, random_visit, _ = _municipality(1)
    honest = honest_precision_at_k(scores, random_visit, y, 100, min_random_visits=30)
    assert honest.widened and honest.region_k > 100 and honest.n >= 30
    assert honest.region_k in {250, 500, 1000, 2500, 5000}  # a fraction from DEFAULT_WIDEN_TO
    assert "widened from the top 100" in honest.region
    assert f"precision@{honest.region_k}, not precision@100" in honest.region
    truth = y[scores >= honest.threshold].mean()
    assert honest.ci_low <= truth <= honest.ci_high


def test_a_widened_estimate_is_not_precision_at_k_and_gives_bounds_instead() -> None:
    """The row of k = 100 says "not estimable" with bounds that hold the truth, never the
    wider region's number."""
    y, scores, random_visit, _ = _municipality(1)
    honest = honest_precision_at_k(scores, random_visit, y, 100, min_random_visits=30)
    assert honest.widened and not honest.estimable
    assert math.isnan(honest.precision_at_k)
    text = honest.precision_at_k_text
    assert text.startswith("not estimable") and f"{honest.estimate:.3f}" not in text
    truth = precision_at_k(y, scores, 100)
    assert honest.bound_low <= truth <= honest.bound_high
    top = scores >= np.sort(scores)[-100]
    assert honest.n_in_top_k == int((top & random_visit).sum())
    assert honest.bound_low == y[top & random_visit].sum() / 100
    assert {"estimable", "bound_low", "bound_high", "n_in_top_k"} <= set(honest.to_dict())
    enough = honest_precision_at_k(scores, random_visit, y, 2500)
    assert enough.estimable and enough.precision_at_k == enough.estimate


def test_honest_estimate_accepts_labels_per_visit_or_per_address() -> None:
    y, scores, random_visit, _ = _municipality(2, n=5000)
    aligned = np.where(random_visit, y, np.nan)
    a = honest_precision_at_k(scores, random_visit, aligned, 500, min_random_visits=5)
    b = honest_precision_at_k(scores, random_visit, y[random_visit], 500, min_random_visits=5)
    assert a == b
    with pytest.raises(ValueError, match="y_random has"):
        honest_precision_at_k(scores, random_visit, y[:10], 500)


def test_honest_bootstrap_interval_agrees_with_wilson() -> None:
    y, scores, random_visit, _ = _municipality(3)
    wilson = honest_precision_at_k(scores, random_visit, y, 2500)
    boot = honest_precision_at_k(scores, random_visit, y, 2500, ci_method="bootstrap", seed=1)
    assert boot.estimate == wilson.estimate
    assert boot.ci_low == pytest.approx(wilson.ci_low, abs=0.05)
    assert boot.ci_high == pytest.approx(wilson.ci_high, abs=0.05)


def test_honest_estimate_without_random_visits_is_nan_and_says_so() -> None:
    y, scores, _, _ = _municipality(4, n=2000)
    honest = honest_precision_at_k(scores, np.zeros(2000, dtype=bool), y, 100)
    assert math.isnan(honest.estimate) and honest.n == 0
    assert "fewer than 30 random-sample visits even so" in honest.region
    assert json.loads(json.dumps(honest.to_dict()))["method"] == "honest"


# --------------------------------------------------------------------------- promotion


def _estimate(estimate: float, *, k: int = 100, region_k: int = 100) -> HonestEstimate:
    return HonestEstimate(
        estimate=estimate,
        ci_low=estimate - 0.1,
        ci_high=estimate + 0.1,
        n=40,
        n_positive=0 if math.isnan(estimate) else round(40 * estimate),
        k=k,
        region_k=region_k,
        population=50_000,
        threshold=0.5,
        widened=region_k > k,
        ci_method="wilson",
        confidence=0.95,
        region="test",
    )


def test_promotion_refuses_a_worse_challenger_and_says_why() -> None:
    ok, reason = PromotionCheck().compare_honest(_estimate(0.30), _estimate(0.35))
    assert not ok
    assert "worse than champion" in reason and "0.300" in reason and "0.350" in reason


def test_promotion_accepts_better_equal_first_and_tolerated() -> None:
    check = PromotionCheck()
    assert check.compare_honest(_estimate(0.40), _estimate(0.35))[0]
    assert check.compare_honest(_estimate(0.35), _estimate(0.35))[0]
    assert check.compare_honest(_estimate(0.35), None)[0]
    assert PromotionCheck(tolerance=0.06).compare_honest(_estimate(0.30), _estimate(0.35))[0]


def test_promotion_refuses_estimates_for_different_regions() -> None:
    ok, reason = PromotionCheck().compare_honest(
        _estimate(0.5), _estimate(0.2, k=100, region_k=1000)
    )
    assert not ok and "not comparable" in reason and "k=1000" in reason
    ok, reason = PromotionCheck().compare_honest(_estimate(math.nan), None)
    assert not ok and "no honest estimate" in reason
