"""Ranking metrics at a cut-off k: precision@k, lift@k, top-k selection."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from stratum_ml.evaluation.metrics._checks import (
    FloatArray,
    _as_binary,
    _as_scores,
    _check_k,
    _check_same_length,
)


def _kth_highest(scores: FloatArray, k: int) -> float:
    return float(np.partition(scores, scores.size - k)[scores.size - k])


def _precision_at_k(y: FloatArray, scores: FloatArray, k: int) -> float:
    threshold = _kth_highest(scores, k)
    above = scores > threshold
    tied = scores == threshold
    n_above = int(above.sum())
    hits = y[above].sum() + (k - n_above) * y[tied].mean()
    return float(hits / k)


def precision_at_k(y_true: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Share of violations among the ``k`` highest-scored rows.

    Ties at the k-th score are shared out in expectation: the rows strictly above
    it count in full, and the remaining places are filled with the average label
    of the tied rows. That is the mean over all random tie-breaks, computed
    exactly and deterministically, which matters for coarse baselines such as
    "number of recent reports" where many rows share a score.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels (1 = violation); no missing values.
    scores : array-like of shape (n,)
        Higher means ranked earlier; no NaN.
    k : int
        Cut-off, ``1 <= k <= n``.

    Returns
    -------
    float
        Precision at ``k``.

    Examples
    --------
    >>> precision_at_k([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], k=2)
    0.5
    >>> precision_at_k([1, 1, 0, 0], [3, 2, 2, 2], k=2)  # one of three tied rows: 1 + 1/3
    0.6666666666666666
    """
    y = _as_binary(y_true, "y_true")
    s = _as_scores(scores, "scores")
    _check_same_length(y_true=y, scores=s)
    return _precision_at_k(y, s, _check_k(k, y.size))


def top_k_mask(scores: ArrayLike, k: int, *, seed: int = 0) -> NDArray[np.bool_]:
    """Boolean mask selecting exactly ``k`` rows with the highest scores.

    Ties at the k-th score are broken uniformly at random with ``seed``, so the
    selection does not depend on row order.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Higher means selected first; no NaN.
    k : int
        Number of rows to select, ``1 <= k <= n``.
    seed : int, default 0
        Seed for the tie-break.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)

    Examples
    --------
    >>> top_k_mask([0.2, 0.9, 0.5], k=2).tolist()
    [False, True, True]
    """
    s = _as_scores(scores, "scores")
    k = _check_k(k, s.size)
    tie_break = np.random.default_rng(seed).random(s.size)
    order = np.lexsort((tie_break, -s))
    mask = np.zeros(s.size, dtype=bool)
    mask[order[:k]] = True
    return mask


def _lift(precision: float, baseline: float) -> float:
    return precision / baseline if baseline > 0 else math.nan


def lift_at_k(
    y_true: ArrayLike, scores: ArrayLike, k: int, baseline_scores: ArrayLike | None = None
) -> float:
    """Precision@k of ``scores`` divided by that of a baseline.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels; no missing values.
    scores : array-like of shape (n,)
        The model's scores.
    k : int
        Cut-off.
    baseline_scores : array-like of shape (n,), optional
        A baseline ranking (for example the number of recent reports). ``None``
        compares with a random selection, whose expected precision is the prevalence.

    Returns
    -------
    float
        The lift; NaN when the baseline's precision@k is 0.

    Examples
    --------
    >>> lift_at_k([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], k=1)  # 1.0 / prevalence 0.5
    2.0
    """
    y = _as_binary(y_true, "y_true")
    model = precision_at_k(y, scores, k)
    if baseline_scores is None:
        return _lift(model, float(y.mean()))
    return _lift(model, precision_at_k(y, baseline_scores, k))


def ranking_report(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    ks: Sequence[int] = (50, 100, 250, 500),
    baselines: Mapping[str, ArrayLike] | None = None,
) -> pd.DataFrame:
    """Precision@k of the model and of baselines, and the model's lift over each.

    The ``random`` baseline is always included: its precision@k is the expected
    precision of ``k`` rows drawn at random, the prevalence. Every other baseline
    is a score to rank by (e.g. ``{"current_practice": n_recent_reports}``); its
    ties are shared out in expectation as in :func:`precision_at_k`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels of every ranked row (for example a truth file, or labelled visits).
    scores : array-like of shape (n,)
        The model's scores.
    ks : sequence of int, default (50, 100, 250, 500)
        Cut-offs. A ``k`` larger than ``n`` gives a row of NaN.
    baselines : mapping of str to array-like, optional
        Named baseline scores; the names ``model`` and ``random`` are reserved.

    Returns
    -------
    pandas.DataFrame
        One row per ``k``: ``k``, ``precision_model``, ``precision_random``,
        ``precision_<baseline>``..., ``lift_over_random``, ``lift_over_<baseline>``...
    """
    y = _as_binary(y_true, "y_true")
    s = _as_scores(scores, "scores")
    _check_same_length(y_true=y, scores=s)
    named = dict(baselines or {})
    reserved = {"model", "random"} & set(named)
    if reserved:
        raise ValueError(f"baseline names {sorted(reserved)} are reserved")
    ranked: dict[str, FloatArray] = {"model": s}
    for name, values in named.items():
        ranked[name] = _as_scores(values, f"baselines[{name!r}]")
        _check_same_length(y_true=y, **{name: ranked[name]})
    prevalence = float(y.mean()) if y.size else math.nan
    comparisons = ["random", *named]
    rows = []
    for k in ks:
        row: dict[str, float] = {"k": k}
        fits = 1 <= k <= y.size
        for name, values in ranked.items():
            row[f"precision_{name}"] = _precision_at_k(y, values, k) if fits else math.nan
        row["precision_random"] = prevalence if fits else math.nan
        for name in comparisons:
            row[f"lift_over_{name}"] = _lift(row["precision_model"], row[f"precision_{name}"])
        rows.append(row)
    columns = [
        "k",
        "precision_model",
        *(f"precision_{name}" for name in comparisons),
        *(f"lift_over_{name}" for name in comparisons),
    ]
    return pd.DataFrame(rows, columns=columns).astype({"k": "int64"})
