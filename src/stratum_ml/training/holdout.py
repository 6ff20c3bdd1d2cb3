"""Evaluate any model on a run's holdout visits and population, the same way every time.

Promotion compares a challenger and the champion on the *challenger's* holdout:
both are scored here, on the frames the challenger's run logged
(``evaluation_data['holdout']`` and ``['population']``), so the two honest
estimates rest on the same random-sample visits and the same population.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from stratum_ml.evaluation.metrics import (
    HonestEstimate,
    NaiveEstimate,
    honest_precision_at_k,
    naive_precision_at_k,
)
from stratum_ml.model.risk_model import RiskModel

RANDOM_REASON = "random_sample"
ScoreFn = Callable[[pd.DataFrame], np.ndarray]


def ranked_population(
    score: ScoreFn | RiskModel,
    holdout: pd.DataFrame,
    population: pd.DataFrame,
    *,
    visits: str = RANDOM_REASON,
    scored: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Population scores with the holdout's random-sample visits placed inside it.

    An address with a random-sample visit enters with its score as of its visit date
    (and its outcome); every other address with its score as of the population date.
    Ranking uses the raw score: it orders exactly like the calibrated probability but
    has no ties from the calibrator's steps. ``score`` may also be any function of the
    features (a baseline). With ``visits="all"`` every holdout visit is placed, not only
    the random-sample ones (for the fairness audit's error rates). ``scored``: the
    scores of every population row and every holdout row, when already computed
    (:func:`score_rows`: a model scores a row the same on its own or in a frame), so
    that placing the visits twice scores a population of a million dwellings once.

    Returns
    -------
    scores, random_mask, labels
        ``labels`` is NaN outside ``random_mask``.
    """
    placed = np.ones(len(holdout), bool) if visits == "all" else holdout["reason"] == visits
    random_visits = holdout.loc[placed]
    kept = ~population.index.isin(random_visits["address_id"])
    others = population.loc[kept]
    if scored is None:
        fn = score.raw_score if isinstance(score, RiskModel) else score
        scores = np.concatenate([fn(others), fn(random_visits)])
    else:
        scores = np.concatenate([scored[0][kept], scored[1][np.asarray(placed, bool)]])
    mask = np.concatenate([np.zeros(len(others), bool), np.ones(len(random_visits), bool)])
    labels = np.concatenate(
        [np.full(len(others), np.nan), random_visits["label"].to_numpy(dtype=float)]
    )
    return scores, mask, labels


def score_rows(
    model: RiskModel, holdout: pd.DataFrame, population: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """A model's raw scores of every population row and every holdout row (``scored``)."""
    return model.raw_score(population), model.raw_score(holdout)


def honest_estimates(
    model: RiskModel | ScoreFn,
    holdout: pd.DataFrame,
    population: pd.DataFrame,
    ks: Iterable[int],
    *,
    scored: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[int, HonestEstimate]:
    """Honest precision@k for each k (see ``evaluation.metrics.honest_precision_at_k``)."""
    scores, mask, labels = ranked_population(model, holdout, population, scored=scored)
    return {k: honest_precision_at_k(scores, mask, labels, k) for k in ks}


def naive_estimates(
    model: RiskModel, holdout: pd.DataFrame, ks: Iterable[int]
) -> dict[int, NaiveEstimate]:
    """Precision@k ranking all holdout visits (biased by who was visited)."""
    scores = model.raw_score(holdout)
    labels = holdout["label"].to_numpy(dtype=float)
    return {k: naive_precision_at_k(scores, labels, min(k, len(labels))) for k in ks}
