"""A planted group disparity on a generated town: the design-based FPR ratio finds it.

The issue's test: on a generated municipality with its truth file, a scorer with a
planted group disparity (a fair score plus a term for residents born outside
Europe) and the fair score itself each rank the town; visit plans are drawn as
``stratum run --capacity`` draws them, the picks are answered from the truth, and
the false-positive-rate ratio of the top ``capacity`` (group against the rest) is
estimated by Horvitz-Thompson (:func:`stratum_ml.evaluation.design.fpr_ratio`).
Over many seeds (plan draw and score noise) the 95% interval holds the true ratio
(from the truth file) in most of them, and the two scorers are told apart: the
biased scorer's interval excludes 1, the fair scorer's holds it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratum_ml.evaluation.design import DesignEstimate, StratifiedDesign, fpr_ratio
from stratum_ml.evaluation.sensitive import address_groups
from stratum_ml.features.population import population_queries
from stratum_ml.runs.plan import draw_plan, plan_strata, stratum_of_rank
from stratum_ml.synthetic.generate import GeneratorConfig, generate_tables
from stratum_ml.synthetic.truth import truth_at

TOWN = GeneratorConfig(n_addresses=4000, seed=5)
GROUP = "any_resident_born_outside_europe"
CAPACITY, SHARE = 300, 0.2
SEEDS = 40
#: the planted term: a biased score is the fair one plus this for the group
PLANTED = 0.75


@pytest.fixture(scope="module")
def town() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The truth on a date a month before the extract, and the two known groups."""
    municipality = generate_tables(TOWN)
    day = pd.Timestamp(TOWN.extract_date) - pd.Timedelta(days=30)
    queries = population_queries(municipality.sources.addresses, day)
    groups = address_groups(municipality.sources, municipality.audit, queries)[GROUP]
    values = groups.astype("string")
    inside = (values == "True").fillna(False).to_numpy(dtype=bool)
    outside = (values == "False").fillna(False).to_numpy(dtype=bool)
    y = truth_at(municipality.truth, queries["address_id"], day.date().isoformat())
    return y.astype(float), inside, outside


def _ranks(score: np.ndarray) -> np.ndarray:
    ranks = np.empty(score.size, dtype=np.int64)
    ranks[np.argsort(-score, kind="stable")] = np.arange(1, score.size + 1)
    return ranks


def _true_ratio(top: np.ndarray, y: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> float:
    def fpr(group: np.ndarray) -> float:
        return float((top & (y == 0) & group).sum() / ((y == 0) & group).sum())

    return fpr(inside) / fpr(outside)


def _estimate(
    ranks: np.ndarray, y: np.ndarray, groups: tuple[np.ndarray, ...], seed: int
) -> DesignEstimate:
    """Draw a plan over the ranking, answer its picks from the truth, estimate the ratio."""
    n = ranks.size
    plan = draw_plan(n, CAPACITY, SHARE, seed=seed)
    sampled = np.isin(ranks, plan["rank"].to_numpy())
    design = StratifiedDesign.of(
        stratum_of_rank(ranks, plan_strata(n, CAPACITY, SHARE)),
        sampled,
        sampled,
        np.where(sampled, y, np.nan),
    )
    return fpr_ratio(design, ranks <= CAPACITY, *groups)


def test_the_fpr_ratio_interval_holds_the_truth_and_tells_a_biased_scorer_from_a_fair_one(
    town: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    y, inside, outside = town
    covered = {"fair": 0, "biased": 0}
    excludes_one = {"fair": 0, "biased": 0}
    true_ratios: dict[str, list[float]] = {"fair": [], "biased": []}
    for seed in range(SEEDS):
        fair = 2.0 * y + np.random.default_rng(seed).normal(size=y.size)
        for name, score in (("fair", fair), ("biased", fair + PLANTED * inside)):
            ranks = _ranks(score)
            truth = _true_ratio(ranks <= CAPACITY, y, inside, outside)
            est = _estimate(ranks, y, (inside, outside), seed)
            true_ratios[name].append(truth)
            covered[name] += est.contains(truth)
            excludes_one[name] += not est.contains(1.0)
    # the planted disparity is there in the truth, and the fair scorer has none
    assert np.mean(true_ratios["biased"]) > 3.0
    assert abs(np.mean(true_ratios["fair"]) - 1.0) < 0.1
    # 95% intervals: coverage at least the stated level minus slack, in each scorer
    assert covered["fair"] / SEEDS >= 0.85, covered
    assert covered["biased"] / SEEDS >= 0.85, covered
    # told apart: the biased scorer's interval excludes 1 in most seeds, the fair one's holds it
    assert excludes_one["biased"] / SEEDS >= 0.75, excludes_one
    assert excludes_one["fair"] / SEEDS <= 0.1, excludes_one
