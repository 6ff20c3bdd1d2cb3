"""Check a model against a synthetic municipality's ground truth.

On real data the truth is unknown and the honest estimate (random-sample visits)
is the best one can do. On a generated municipality the truth file says which
dwellings are in violation on any date, so the *true* precision@k of a ranking
can be computed and the honest estimate checked against it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stratum_ml.evaluation.metrics import precision_at_k
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.synthetic.truth import truth_at
from stratum_ml.training.train import CURRENT_PRACTICE_FEATURE


def true_precision(
    scorer: Scorer,
    truth: pd.DataFrame,
    ks: Sequence[int] = (50, 100, 250, 500),
    *,
    practice: pd.Series | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """True precision@k of the model, of current practice and of random choice.

    Parameters
    ----------
    scorer
        Scores of every dwelling as of ``scorer.as_of``.
    truth
        The truth table (see :mod:`stratum_ml.synthetic.truth`).
    ks
        Cut-offs.
    practice
        Current-practice score by address (default: reports in the past year, if the
        model reads it; otherwise that row is left out).
    seed
        Tie-breaking seed for current practice.

    Returns
    -------
    pandas.DataFrame
        Columns ``ranking, k, true_precision, lift_over_random`` (random = prevalence).
    """
    ids = scorer.table.index
    y = truth_at(truth, ids, pd.Timestamp(scorer.as_of)).astype(float)
    prevalence = float(y.mean())
    rankings: dict[str, np.ndarray] = {"model": scorer.table["raw_score"].to_numpy()}
    if practice is None and CURRENT_PRACTICE_FEATURE in scorer.features.columns:
        practice = scorer.features[CURRENT_PRACTICE_FEATURE]
    if practice is not None:
        jitter = np.random.default_rng(seed).uniform(0, 1e-3, len(ids))
        rankings["current_practice"] = practice.reindex(ids).fillna(0).to_numpy() + jitter
    rows = []
    for k in ks:
        k_eff = min(k, len(ids))
        for name, scores in rankings.items():
            p = precision_at_k(y, scores, k_eff)
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
    out.attrs["as_of"] = str(scorer.as_of)
    out.attrs["prevalence"] = prevalence
    return out


def scoring_date_default(tables_extract: dt.date | None, inspections: pd.DataFrame) -> dt.date:
    """The day after the last visit, when no date is given."""
    if tables_extract is not None:
        return tables_extract
    last = pd.Timestamp(inspections["inspected_at"].max())
    return (last + pd.Timedelta(days=1)).date()
