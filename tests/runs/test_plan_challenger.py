"""The challenger stratum of a visit plan: what the draw does, and what it lets Horvitz-Thompson
estimate (numpy only: a known population, many simulated draws)."""

from __future__ import annotations

import numpy as np
import pytest

from stratum_ml.evaluation.design import StratifiedDesign, precision_at_k
from stratum_ml.runs.plan import (
    PlanError,
    draw_plan,
    explain_share,
    plan_strata,
    stratum_of_rank,
)

POPULATION, CAPACITY = 1500, 100


def _challenger(population: int, seed: int, noise: float = 400.0) -> np.ndarray:
    """A challenger's rank of the dwelling at each champion rank: the champion's, blurred."""
    rng = np.random.default_rng(seed)
    score = np.arange(population) + rng.normal(0.0, noise, population)
    ranks = np.empty(population, dtype=np.int64)
    ranks[np.argsort(score, kind="stable")] = np.arange(1, population + 1)
    return ranks


@pytest.fixture(scope="module")
def challenger() -> np.ndarray:
    return _challenger(POPULATION, 3)


def test_the_challenger_stratum_is_its_top_picks_less_the_champions(
    challenger: np.ndarray,
) -> None:
    strata = plan_strata(
        POPULATION, CAPACITY, 0.2, challenger_share=0.2, challenger_ranks=challenger
    )
    assert sum(s.drawn for s in strata) == CAPACITY
    assert sum(s.size for s in strata) == POPULATION
    top, last = strata[0], strata[-1]
    assert top.kind == "top" and top.size == top.drawn == 60
    assert last.kind == "challenger" and last.drawn == 20 and last.band == "challenger 1-100"
    ranks = np.arange(1, POPULATION + 1)
    members = (challenger <= CAPACITY) & (ranks > 60)
    assert last.size == members.sum()
    where = stratum_of_rank(ranks, strata, challenger)
    for s in strata:  # a partition: every dwelling in exactly the stratum that counts it
        assert (where == s.index).sum() == s.size
    assert (where[members] == last.index).all() and (where[~members] != last.index).all()
    # without the challenger's ranks the dwellings cannot be placed
    with pytest.raises(PlanError, match="challenger's ranks"):
        stratum_of_rank(ranks, strata)
    with pytest.raises(PlanError, match="shadow-scored run"):
        plan_strata(POPULATION, CAPACITY, 0.2, challenger_share=0.2)
    with pytest.raises(PlanError, match="together take more than the capacity"):
        plan_strata(POPULATION, CAPACITY, 0.6, challenger_share=0.5, challenger_ranks=challenger)
    with pytest.raises(PlanError, match=r"rank the run's 1500 dwellings"):
        plan_strata(
            POPULATION, CAPACITY, 0.2, challenger_share=0.2, challenger_ranks=challenger[:-1]
        )


def test_no_challenger_share_draws_the_plan_as_before(challenger: np.ndarray) -> None:
    plain = draw_plan(POPULATION, CAPACITY, 0.1, seed=4)
    assert plain.equals(draw_plan(POPULATION, CAPACITY, 0.1, seed=4, challenger_ranks=challenger))
    assert set(plain["pick"]) == {"top", "exploration"}


def test_inclusion_frequencies_over_many_draws_are_the_stated_probabilities(
    challenger: np.ndarray,
) -> None:
    """Every dwelling's empirical inclusion frequency over 1,200 draws against its stated pi."""
    draws = 1200
    options = {"challenger_share": 0.15, "challenger_ranks": challenger}
    strata = plan_strata(POPULATION, CAPACITY, 0.2, **options)
    where = stratum_of_rank(np.arange(1, POPULATION + 1), strata, challenger)
    stated = np.array([s.inclusion_probability for s in strata])[where]
    counts = np.zeros(POPULATION)
    for seed in range(draws):
        plan = draw_plan(POPULATION, CAPACITY, 0.2, seed=seed, **options)
        assert len(plan) == CAPACITY and plan["rank"].is_unique
        picks = plan["rank"].to_numpy() - 1
        counts[picks] += 1
        # the probability stored with each pick is its dwelling's stated one
        np.testing.assert_allclose(plan["inclusion_probability"].to_numpy(), stated[picks])
        assert (plan.loc[plan["pick"] == "challenger", "stratum"] == strata[-1].index).all()
    frequency = counts / draws
    sd = np.sqrt(stated * (1 - stated) / draws)
    z = np.abs(frequency - stated) / np.where(sd > 0, sd, 1.0)
    assert (frequency[stated == 1.0] == 1.0).all()
    assert z.max() < 5.0, z.max()  # 1,500 dwellings: a 5-sd miss has p < 1e-3 overall
    # and each stratum's picks add up to its drawn number on average
    for s in strata:
        assert counts[where == s.index].sum() / draws == pytest.approx(s.drawn)


def test_ht_of_the_challengers_precision_is_unbiased_over_draws(challenger: np.ndarray) -> None:
    """A known population; the challenger's precision@k estimated from 800 plans."""
    rng = np.random.default_rng(8)
    # violations more likely high in the champion's list, and among the challenger's picks
    p = 0.05 + 0.5 * np.exp(-np.arange(POPULATION) / 300) + 0.2 * (challenger <= 150)
    y = (rng.random(POPULATION) < np.clip(p, 0, 1)).astype(float)
    ks = (50, CAPACITY)
    truth = {k: float(y[challenger <= k].mean()) for k in ks}
    options = {"challenger_share": 0.2, "challenger_ranks": challenger}
    strata = plan_strata(POPULATION, CAPACITY, 0.1, **options)
    stratum = stratum_of_rank(np.arange(1, POPULATION + 1), strata, challenger)
    estimates: dict[int, list[float]] = {k: [] for k in ks}
    ses: dict[int, list[float]] = {k: [] for k in ks}
    covered = dict.fromkeys(ks, 0)
    draws = 800
    for seed in range(draws):
        plan = draw_plan(POPULATION, CAPACITY, 0.1, seed=seed, **options)
        sampled = np.zeros(POPULATION, dtype=bool)
        sampled[plan["rank"].to_numpy() - 1] = True
        design = StratifiedDesign.of(stratum, sampled, sampled, np.where(sampled, y, np.nan))
        for k in ks:
            est = precision_at_k(design, challenger <= k, min_visits=0)
            assert est.estimable, est
            estimates[k].append(est.estimate)
            ses[k].append(est.se)
            covered[k] += est.contains(truth[k])
    for k in ks:
        values = np.array(estimates[k])
        # unbiased: the mean of 800 estimates within 4 standard errors of the truth
        assert abs(values.mean() - truth[k]) < 4 * values.std() / np.sqrt(draws), k
        # the stratified variance estimate is not too small (the 0/1 floor may widen it)
        assert np.mean(np.square(ses[k])) >= 0.9 * values.var(), k
        assert covered[k] / draws >= 0.93, (k, covered[k] / draws)


def test_explain_says_what_a_challenger_share_buys(challenger: np.ndarray) -> None:
    e = explain_share(POPULATION, CAPACITY, 0.1, ks=(50, 100), challenger_share=0.2)
    assert "share nothing" in e.challenger_scenario
    rows = e.challenger.set_index("k")
    # disjoint lists: the challenger's top 100 is the whole challenger stratum, 20 drawn
    assert rows.loc[100, "visits_per_run"] == pytest.approx(20)
    expected = 1.959963984540054 * np.sqrt(100**2 * (1 - 20 / 100) * 0.25 / 20) / 100
    assert rows.loc[100, "half_width_run"] == pytest.approx(expected)
    assert rows.loc[50, "visits_per_run"] == pytest.approx(10)
    # with the challenger's actual ranks, the part it shares with the top picks is counted
    actual = explain_share(
        POPULATION, CAPACITY, 0.1, ks=(100,), challenger_share=0.2, challenger_ranks=challenger
    )
    assert actual.challenger.loc[0, "half_width_run"] < rows.loc[100, "half_width_run"]
    assert explain_share(POPULATION, CAPACITY, 0.1).challenger.empty
