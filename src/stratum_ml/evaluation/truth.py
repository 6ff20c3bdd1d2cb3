"""Check a ranking against a synthetic municipality's ground truth.

On real data the truth is unknown and the honest estimate (random-sample visits)
is the best one can do. On a generated municipality the truth file says which
dwellings are in violation on any date, so the *true* precision@k of a ranking
can be computed -- with :func:`~stratum_ml.evaluation.metrics.ranking_report`,
like any other ranking -- and the honest estimate checked against it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratum_ml.evaluation.metrics import HonestEstimate, ranking_report
from stratum_ml.features.population import CURRENT_PRACTICE_FEATURE
from stratum_ml.synthetic.truth import truth_at

__all__ = ["TruthCheck", "check_against_truth", "true_precision"]


def true_precision(
    scores: pd.Series,
    truth: pd.DataFrame,
    as_of: dt.date,
    ks: Sequence[int] = (50, 100, 250, 500),
    *,
    practice: pd.Series | None = None,
) -> pd.DataFrame:
    """True precision@k of the model, of current practice and of random choice.

    Parameters
    ----------
    scores : pandas.Series
        The model's score of every scored dwelling, indexed by ``address_id``.
    truth : pandas.DataFrame
        The truth table (see :mod:`stratum_ml.synthetic.truth`).
    as_of : datetime.date
        The date the scores are for; the truth is read on it.
    ks : sequence of int, default (50, 100, 250, 500)
        Cut-offs; one larger than the population counts the whole population.
    practice : pandas.Series, optional
        Current-practice score by address (e.g. reports in the past year; a missing
        value counts as 0). Without it, that ranking is left out.

    Returns
    -------
    pandas.DataFrame
        Columns ``ranking, k, true_precision, lift_over_random`` (random = prevalence);
        ``attrs`` holds ``as_of`` and ``prevalence``. Ties are shared out in
        expectation (see :func:`~stratum_ml.evaluation.metrics.precision_at_k`).
    """
    ids = scores.index
    y = truth_at(truth, ids, pd.Timestamp(as_of)).astype(float)
    prevalence = float(y.mean())
    baselines = {}
    if practice is not None:
        baselines["current_practice"] = practice.reindex(ids).fillna(0).to_numpy(dtype=float)
    cut = [min(k, len(ids)) for k in ks]
    wide = ranking_report(y, scores.to_numpy(dtype=float), ks=cut, baselines=baselines)
    rows = []
    for k, (_, row) in zip(ks, wide.iterrows(), strict=True):
        for name in ("model", *baselines):
            p = float(row[f"precision_{name}"])
            rows.append(
                {
                    "ranking": name,
                    "k": k,
                    "true_precision": p,
                    "lift_over_random": p / prevalence if prevalence else np.nan,
                }
            )
        rows.append(
            {"ranking": "random", "k": k, "true_precision": prevalence, "lift_over_random": 1.0}
        )
    out = pd.DataFrame(rows)
    out.attrs["as_of"] = str(as_of)
    out.attrs["prevalence"] = prevalence
    return out


@dataclass(frozen=True)
class TruthCheck:
    """True precision@k beside the honest estimates a training logged.

    Attributes
    ----------
    as_of : datetime.date
    prevalence : float
        Share of scored dwellings in violation on ``as_of``.
    table : pandas.DataFrame
        One row per k (index ``k``): ``model``, ``current_practice`` (NaN when not
        ranked), ``random`` and ``honest_estimate``: the logged honest estimate
        whose region holds exactly ``k`` dwellings (NaN for other k).
    """

    as_of: dt.date
    prevalence: float
    table: pd.DataFrame


def check_against_truth(
    scores: pd.Series,
    truth: pd.DataFrame,
    as_of: dt.date,
    honest: Mapping[int, HonestEstimate],
    *,
    features: pd.DataFrame | None = None,
) -> TruthCheck:
    """Compare logged honest estimates with the true precision of the same regions.

    An honest estimate at ``k`` covers the top ``region_k`` dwellings (wider than
    ``k`` when few random-sample visits fell in the top ``k``), so the truth is
    computed at every ``k`` and every ``region_k``, and each estimate is set beside
    the true precision of its own region.

    Parameters
    ----------
    scores : pandas.Series
        The model's score of every scored dwelling on ``as_of``, by ``address_id``.
    truth : pandas.DataFrame
        The generator's truth table.
    as_of : datetime.date
        The scoring date.
    honest : mapping of int to HonestEstimate
        The honest estimates the training logged, by k.
    features : pandas.DataFrame, optional
        The scored feature table, by ``address_id``; when it holds
        :data:`~stratum_ml.features.population.CURRENT_PRACTICE_FEATURE`, current
        practice (ranking by reports in the past year) is checked too.

    Returns
    -------
    TruthCheck
    """
    ks = sorted(set(honest) | {est.region_k for est in honest.values()})
    practice = None
    if features is not None and CURRENT_PRACTICE_FEATURE in features.columns:
        practice = features[CURRENT_PRACTICE_FEATURE]
    result = true_precision(scores, truth, as_of, ks, practice=practice)
    table = result.pivot(index="k", columns="ranking", values="true_precision")
    table = table.reindex(columns=["model", "current_practice", "random"])
    by_region = {est.region_k: est.estimate for est in honest.values()}
    table["honest_estimate"] = [by_region.get(int(k), np.nan) for k in table.index]
    return TruthCheck(as_of, float(result.attrs["prevalence"]), table)
