"""Design-based estimates: Horvitz-Thompson against brute force, bounds, coverage (numpy only)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from stratum_ml.evaluation.design import (
    NOT_ESTIMABLE,
    StratifiedDesign,
    fpr_ratio,
    group_fpr,
    ht_total,
    precision_at_k,
    precision_difference_at_k,
    prevalence,
    recall_at_k,
)
from stratum_ml.runs.plan import draw_plan, plan_strata, stratum_of_rank

# a small population: 3 certain, a band of 5 drawing 2, a band of 6 drawing 3
STRATUM = np.array([0] * 3 + [1] * 5 + [2] * 6)
DRAWN = {0: 3, 1: 2, 2: 3}
Y = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1], dtype=float)


def all_samples() -> list[np.ndarray]:
    """Every sample the design can draw (as a boolean mask), each equally likely."""
    per_stratum = [
        list(itertools.combinations(np.flatnonzero(h == STRATUM), DRAWN[h])) for h in DRAWN
    ]
    samples = []
    for combo in itertools.product(*per_stratum):
        mask = np.zeros(STRATUM.size, dtype=bool)
        for chosen in combo:
            mask[list(chosen)] = True
        samples.append(mask)
    return samples


def design_of(mask: np.ndarray, observed: np.ndarray | None = None) -> StratifiedDesign:
    obs = mask if observed is None else observed
    return StratifiedDesign.of(STRATUM, mask, obs, np.where(obs, Y, np.nan))


def test_inclusion_probabilities_are_drawn_over_size() -> None:
    d = design_of(all_samples()[0])
    assert d.inclusion_probability().tolist() == [1.0] * 3 + [0.4] * 5 + [0.5] * 6
    assert d.certain().sum() == 3


@pytest.mark.parametrize(
    "selection",
    [
        np.arange(14) < 8,  # the drawing ranking's top 8
        np.isin(np.arange(14), [0, 4, 9, 10, 13]),  # another model's top 5, across strata
    ],
)
def test_ht_total_and_its_variance_are_unbiased_by_brute_force(selection: np.ndarray) -> None:
    z = Y * selection
    samples = all_samples()
    estimates, variances = zip(*(ht_total(design_of(m), z) for m in samples), strict=True)
    assert np.mean(estimates) == pytest.approx(z.sum(), abs=1e-12)
    true_var = np.var(estimates)  # every sample equally likely
    assert np.mean(variances) == pytest.approx(true_var, rel=1e-9)


def test_precision_at_k_is_unbiased_for_any_ranking_by_brute_force() -> None:
    selection = np.isin(np.arange(14), [1, 5, 6, 11, 12, 13])
    values = [precision_at_k(design_of(m), selection, min_visits=0) for m in all_samples()]
    assert {v.method for v in values} == {"horvitz_thompson"}
    assert np.mean([v.estimate for v in values]) == pytest.approx(Y[selection].mean())


def test_prevalence_and_recall_are_consistent_on_a_census() -> None:
    everyone = np.ones(14, dtype=bool)
    census = StratifiedDesign.of(STRATUM, everyone, everyone, Y)
    top = np.arange(14) < 8
    p = prevalence(census)
    r = recall_at_k(census, top)
    assert (p.estimate, p.low, p.high) == pytest.approx((Y.mean(),) * 3)
    assert r.estimate == pytest.approx(Y[top].sum() / Y.sum()) and r.se == pytest.approx(0.0)


def test_nonresponse_bounds_hold_every_imputation_by_brute_force() -> None:
    selection = np.arange(14) < 11
    for mask in all_samples():
        drawn = np.flatnonzero(mask & (STRATUM > 0))
        observed = mask.copy()
        observed[drawn[0]] = False  # one exploration pick unanswered
        est = precision_at_k(design_of(mask, observed), selection, min_visits=1)
        full = precision_at_k(design_of(mask), selection, min_visits=1)
        assert est.method == "horvitz_thompson_with_nonresponse_bounds" and est.n_missing == 1
        assert est.estimate_low <= full.estimate <= est.estimate_high
        assert est.low <= full.low and est.high >= full.high


def test_a_region_without_visits_is_not_estimable_with_bounds_and_the_naive_rate() -> None:
    mask = np.zeros(14, dtype=bool)
    mask[:3] = True  # only the certain stratum was visited
    selection = np.arange(14) < 8
    est = precision_at_k(design_of(mask), selection)
    assert est.method == NOT_ESTIMABLE and math.isnan(est.estimate)
    # worst case: the 5 unvisited all negative; best: all positive
    assert (est.low, est.high) == pytest.approx((2 / 8, 7 / 8))
    assert est.contains(Y[selection].mean())
    assert est.naive == pytest.approx(2 / 3)
    assert est.to_dict()["naive_label"].startswith("biased")


def test_too_few_visits_is_not_estimable_and_never_a_wider_region() -> None:
    mask = all_samples()[7]
    est = precision_at_k(design_of(mask), np.arange(14) < 8, min_visits=10)
    assert est.method == NOT_ESTIMABLE and est.quantity == "precision@8"


def test_the_top_picks_alone_are_counted_not_estimated() -> None:
    est = precision_at_k(design_of(all_samples()[0]), np.arange(14) < 3)
    assert (est.estimate, est.low, est.high, est.se) == (2 / 3, 2 / 3, 2 / 3, 0.0)


def test_group_fpr_on_a_census_is_the_true_rate() -> None:
    everyone = np.ones(14, dtype=bool)
    census = StratifiedDesign.of(STRATUM, everyone, everyone, Y)
    top = np.arange(14) < 8
    group = np.arange(14) % 2 == 0
    est = group_fpr(census, top, group)
    innocent = group & (Y == 0)
    assert est.estimate == pytest.approx(top[innocent].mean())
    ratio = fpr_ratio(census, top, group, ~group)
    other = ~group & (Y == 0)
    assert ratio.estimate == pytest.approx(top[innocent].mean() / top[other].mean())


def test_bad_designs_are_refused() -> None:
    with pytest.raises(ValueError, match="not drawn"):
        StratifiedDesign.of([0, 0], [True, False], [True, True], [1, 0])
    with pytest.raises(ValueError, match="0 or 1"):
        StratifiedDesign.of([0, 0], [True, True], [True, True], [1, 2])
    with pytest.raises(ValueError, match="overlap"):
        fpr_ratio(
            design_of(all_samples()[0]), np.ones(14, bool), np.ones(14, bool), np.ones(14, bool)
        )


def _town(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ranks of a drawing model, another model's ranks, the truth and a protected group."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    group = rng.random(n) < 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.2 * risk - 3.5 + 0.4 * group)))).astype(float)
    score = risk + rng.normal(scale=0.6, size=n)
    other = risk + rng.normal(scale=0.9, size=n)
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(-score)] = np.arange(1, n + 1)
    other_ranks = np.empty(n, dtype=np.int64)
    other_ranks[np.argsort(-other)] = np.arange(1, n + 1)
    return ranks, other_ranks, y, group


def test_intervals_cover_the_truth_over_repeated_designs() -> None:
    """95% intervals contain the true value in at least 90% of 300 drawn plans."""
    ranks, other, y, group = _town(3)
    capacity, share = 300, 0.2
    strata = plan_strata(ranks.size, capacity, share)
    stratum = stratum_of_rank(ranks, strata)
    truths = {
        "precision@300": y[ranks <= 300].mean(),
        "other precision@300": y[other <= 300].mean(),
        "other precision@100": y[other <= 100].mean(),
        "recall@300": y[ranks <= 300].sum() / y.sum(),
        "precision@1000": y[ranks <= 1000].mean(),
        "prevalence": y.mean(),
        "group fpr": ((ranks <= 300) & (y == 0) & group).sum() / ((y == 0) & group).sum(),
        "fpr ratio": ((ranks <= 300) & (y == 0) & group).sum()
        / ((y == 0) & group).sum()
        / (((ranks <= 300) & (y == 0) & ~group).sum() / ((y == 0) & ~group).sum()),
    }
    hits = dict.fromkeys(truths, 0)
    estimable = dict.fromkeys(truths, 0)
    widths = []
    repeats = 300
    for seed in range(repeats):
        plan = draw_plan(ranks.size, capacity, share, seed=seed)
        sampled = np.isin(ranks, plan["rank"].to_numpy())
        d = StratifiedDesign.of(stratum, sampled, sampled, np.where(sampled, y, np.nan))
        results = {
            "precision@300": precision_at_k(d, ranks <= 300),
            "other precision@300": precision_at_k(d, other <= 300),
            "other precision@100": precision_at_k(d, other <= 100),
            "recall@300": recall_at_k(d, ranks <= 300),
            "precision@1000": precision_at_k(d, ranks <= 1000),
            "prevalence": prevalence(d),
            "group fpr": group_fpr(d, ranks <= 300, group),
            "fpr ratio": fpr_ratio(d, ranks <= 300, group, ~group),
        }
        for name, est in results.items():
            hits[name] += est.contains(truths[name])
            estimable[name] += est.estimable
        widths.append(results["precision@300"].high - results["precision@300"].low)
    coverage = {name: hits[name] / repeats for name in truths}
    assert all(c >= 0.9 for c in coverage.values()), (coverage, estimable)
    # the drawing model's own list is always estimable at its capacity, and informative
    assert estimable["precision@300"] == estimable["precision@1000"] == repeats
    assert np.mean(widths) < 0.15
    assert estimable["other precision@300"] > repeats / 2


def test_the_paired_difference_is_unbiased_with_a_conservative_variance_by_brute_force() -> None:
    """Two rankings' top 6 on the same plan visits: HT difference against the truth."""
    a = np.isin(np.arange(14), [0, 1, 3, 6, 9, 13])
    b = np.isin(np.arange(14), [0, 2, 4, 5, 9, 12])
    truth = Y[a].mean() - Y[b].mean()
    values = [precision_difference_at_k(design_of(m), a, b, min_visits=0) for m in all_samples()]
    assert {v.method for v in values} == {"horvitz_thompson"}
    estimates = np.array([v.estimate for v in values])
    assert estimates.mean() == pytest.approx(truth)
    # the floored variance is at least the unfloored one, which is unbiased
    unfloored = [ht_total(design_of(m), Y * (a.astype(float) - b))[1] / 36 for m in all_samples()]
    assert np.mean(unfloored) == pytest.approx(estimates.var(), rel=1e-9)
    assert all(v.se**2 >= u - 1e-12 for v, u in zip(values, unfloored, strict=True))
    # paired: the variance is that of one total, not the sum of two precisions' variances
    separate = [
        precision_at_k(design_of(m), a, min_visits=0).se ** 2
        + precision_at_k(design_of(m), b, min_visits=0).se ** 2
        for m in all_samples()
    ]
    assert np.mean([v.se**2 for v in values]) < np.mean(separate)


def test_the_paired_difference_bounds_missing_outcomes_and_says_not_estimable() -> None:
    a = np.isin(np.arange(14), [0, 1, 3, 6, 9, 13])
    b = np.isin(np.arange(14), [0, 2, 4, 5, 9, 12])
    for mask in all_samples():
        drawn = np.flatnonzero(mask & (STRATUM > 0))
        observed = mask.copy()
        observed[drawn[0]] = False
        est = precision_difference_at_k(design_of(mask, observed), a, b, min_visits=1)
        full = precision_difference_at_k(design_of(mask), a, b, min_visits=1)
        if est.method == NOT_ESTIMABLE:  # the bounds hold the truth itself
            assert est.low - 1e-12 <= Y[a].mean() - Y[b].mean() <= est.high + 1e-12
            continue
        assert est.n_missing == 1
        assert est.estimate_low <= full.estimate <= est.estimate_high
        # the interval holds both extremes (clipped to [-1, 1]: an HT total may pass it)
        assert est.low <= max(est.estimate_low, -1.0) and est.high >= min(est.estimate_high, 1.0)
    nothing = np.zeros(14, dtype=bool)
    none = StratifiedDesign.of(STRATUM, nothing, nothing, np.full(14, np.nan))
    blind = precision_difference_at_k(none, a, b)
    assert blind.method == NOT_ESTIMABLE and math.isnan(blind.estimate)
    assert (blind.low, blind.high) == pytest.approx((-4 / 6, 4 / 6))  # 4 addresses differ
    same = precision_difference_at_k(none, a, a)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="one size"):
        precision_difference_at_k(none, a, b & (np.arange(14) > 0))
