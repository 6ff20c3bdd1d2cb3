"""Coverage of the FPR ratio's interval over many plan draws on a known population.

A population with known outcomes and known group membership is ranked; plans are
drawn as :func:`stratum_ml.runs.plan.plan_strata` lays them out (the top picks,
rank bands beyond them, about ten population-wide draws), the picks are answered
from the known outcomes, and the false-positive-rate ratio of the top ``capacity``
(group against the rest) is estimated by :func:`stratum_ml.evaluation.design.fpr_ratio`.
Over 1,000 draws (two populations, with and without a planted disparity), the
95% interval holds the true ratio in at least 90% of the draws where it is
estimable, and interval or bounds together hold it in at least 90% of all draws.
The group is a minority, so a stratum's few draws hold only one or
two of its households: the case in which the plain expansion's interval fell short.
"""

from __future__ import annotations

import numpy as np
import pytest

from stratum_ml.evaluation.design import StratifiedDesign, fpr_ratio
from stratum_ml.runs.plan import plan_strata, stratum_of_rank

POPULATION, CAPACITY, SHARE = 4000, 250, 0.2
DRAWS = 1000


def _population(tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes by rank (violations thin out down the list) and the group (a minority)."""
    rng = np.random.default_rng(11)
    rank = np.arange(1, POPULATION + 1)
    rate = np.select(
        [rank <= 100, rank <= 250, rank <= 500, rank <= 1000], [0.6, 0.35, 0.2, 0.12], 0.04
    )
    y = (rng.random(POPULATION) < rate).astype(float)
    group = rng.random(POPULATION) < np.where(rank <= CAPACITY, 0.3 + tilt, 0.3)
    return y, group


def _true_ratio(top: np.ndarray, y: np.ndarray, group: np.ndarray) -> float:
    def fpr(g: np.ndarray) -> float:
        return float((top & (y == 0) & g).sum() / ((y == 0) & g).sum())

    return fpr(group) / fpr(~group)


@pytest.mark.parametrize(("tilt", "disparity"), [(0.0, False), (0.4, True)])
def test_the_fpr_ratio_interval_holds_its_level_over_many_plan_draws(
    tilt: float, disparity: bool
) -> None:
    y, group = _population(tilt)
    rank = np.arange(1, POPULATION + 1)
    top = rank <= CAPACITY
    truth = _true_ratio(top, y, group)
    strata = plan_strata(POPULATION, CAPACITY, SHARE)
    where = stratum_of_rank(rank, strata)
    members = [np.flatnonzero(where == s.index) for s in strata]
    rng = np.random.default_rng(2026)
    covered = estimable = excludes_one = bounded = 0
    for _ in range(DRAWS // 2):
        sampled = np.zeros(POPULATION, dtype=bool)
        for s, idx in zip(strata, members, strict=True):
            sampled[rng.choice(idx, size=s.drawn, replace=False)] = True
        design = StratifiedDesign.of(where, sampled, sampled, np.where(sampled, y, np.nan))
        est = fpr_ratio(design, top, group, ~group)
        if est.estimable:
            estimable += 1
            covered += est.contains(truth)
            excludes_one += not est.contains(1.0)
        else:  # not estimable: the bounds (the ratio of the two rates' intervals)
            bounded += est.contains(truth)
    assert (truth > 2.0) == disparity, truth
    assert estimable >= 0.5 * DRAWS // 2, estimable
    # a 95% interval: at least 90% of the estimable draws
    assert covered / estimable >= 0.9, (covered, estimable)
    assert (covered + bounded) / (DRAWS // 2) >= 0.9, (covered, bounded)
    # and it still says something: a planted disparity is told from none
    if disparity:
        assert excludes_one / estimable >= 0.75, (excludes_one, estimable)
    else:
        assert excludes_one / estimable <= 0.1, (excludes_one, estimable)
