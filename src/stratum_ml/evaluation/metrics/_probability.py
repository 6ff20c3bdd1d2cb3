"""Probability metrics: threshold-free scores, calibration, and the Wilson interval."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from stratum_ml.evaluation.metrics._checks import _as_binary, _as_proba, _check_same_length


def classification_report(y_true: ArrayLike, proba: ArrayLike) -> dict[str, float]:
    """Threshold-free metrics of predicted probabilities.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels; no missing values.
    proba : array-like of shape (n,)
        Predicted probability of a violation.

    Returns
    -------
    dict of str to float
        ``roc_auc``, ``pr_auc`` (average precision), ``brier``, ``log_loss``,
        ``prevalence`` and ``n``. ROC AUC and PR AUC are NaN when only one class
        is present.
    """
    y = _as_binary(y_true, "y_true")
    p = _as_proba(proba, "proba")
    _check_same_length(y_true=y, proba=p)
    if y.size == 0:
        raise ValueError("no rows to evaluate")
    both_classes = 0.0 < y.mean() < 1.0
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else math.nan,
        "pr_auc": float(average_precision_score(y, p)) if both_classes else math.nan,
        "brier": float(brier_score_loss(y, p, labels=[0, 1])),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "prevalence": float(y.mean()),
        "n": y.size,
    }


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Better behaved than the normal approximation for small ``n`` and for
    proportions near 0 or 1 (it never leaves [0, 1] and is not empty at 0/n).

    Parameters
    ----------
    successes : float
        Number of successes (may be fractional, e.g. an expected count).
    n : float
        Number of trials.
    confidence : float, default 0.95
        Coverage of the interval.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(nan, nan)`` when ``n == 0``.

    Examples
    --------
    >>> [round(b, 4) for b in wilson_interval(5, 10)]
    [0.2366, 0.7634]
    """
    if n <= 0:
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return (low, high)


def calibration_table(
    y_true: ArrayLike,
    proba: ArrayLike,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Observed violation rate per bin of predicted probability.

    The bins are those of :func:`sklearn.calibration.calibration_curve` (empty
    bins are dropped), with the counts and a Wilson interval added.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels; no missing values.
    proba : array-like of shape (n,)
        Predicted probability of a violation.
    n_bins : int, default 10
        Number of bins.
    strategy : {"quantile", "uniform"}, default "quantile"
        Equal-count bins, or equal-width bins on [0, 1].
    confidence : float, default 0.95
        Coverage of the interval on the observed rate.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin``, ``p_low``, ``p_high`` (bin edges),
        ``n``, ``mean_predicted``, ``observed_rate``, ``ci_low``, ``ci_high``.
    """
    y = _as_binary(y_true, "y_true")
    p = _as_proba(proba, "proba")
    _check_same_length(y_true=y, proba=p)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0.0, 100.0, n_bins + 1))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    bin_ids = np.searchsorted(edges[1:-1], p)
    total = np.bincount(bin_ids, minlength=n_bins)
    predicted = np.bincount(bin_ids, weights=p, minlength=n_bins)
    observed = np.bincount(bin_ids, weights=y, minlength=n_bins)
    rows = []
    for b in np.flatnonzero(total):
        low, high = wilson_interval(observed[b], total[b], confidence)
        rows.append(
            {
                "bin": int(b),
                "p_low": float(edges[b]),
                "p_high": float(edges[b + 1]),
                "n": int(total[b]),
                "mean_predicted": predicted[b] / total[b],
                "observed_rate": observed[b] / total[b],
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "bin",
            "p_low",
            "p_high",
            "n",
            "mean_predicted",
            "observed_rate",
            "ci_low",
            "ci_high",
        ],
    )


def plot_calibration(
    y_true: ArrayLike,
    proba: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
    title: str = "Calibration",
) -> Figure:
    """Reliability diagram with Wilson intervals, and a histogram of the predictions.

    The figure is built with :class:`matplotlib.figure.Figure` directly: no
    pyplot state, no display, safe in servers and tests. Save it with
    ``fig.savefig(path)``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels; no missing values.
    proba : array-like of shape (n,)
        Predicted probability of a violation.
    n_bins : int, default 10
        Number of bins, see :func:`calibration_table`.
    strategy : {"quantile", "uniform"}, default "quantile"
        Binning strategy, see :func:`calibration_table`.
    title : str, default "Calibration"
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = calibration_table(y_true, proba, n_bins, strategy)
    p = _as_proba(proba, "proba")
    upper = float(max(p.max(initial=0.0), table["ci_high"].max()))
    limit = min(1.0, 1.05 * upper) if upper > 0 else 1.0
    fig = Figure(figsize=(6.0, 6.5), layout="constrained")
    ax, ax_hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0.0, limit], [0.0, limit], linestyle="--", color="grey", label="perfect calibration")
    ax.errorbar(
        table["mean_predicted"],
        table["observed_rate"],
        yerr=[
            table["observed_rate"] - table["ci_low"],
            table["ci_high"] - table["observed_rate"],
        ],
        marker="o",
        capsize=3,
        label=f"observed rate per {strategy} bin (95% Wilson interval)",
    )
    ax.set(ylabel="observed violation rate", xlim=(0.0, limit), ylim=(0.0, limit), title=title)
    ax.legend(loc="upper left")
    ax_hist.hist(p, bins=50, range=(0.0, limit), color="tab:blue", alpha=0.7)
    ax_hist.set(xlabel="predicted probability of a violation", ylabel="addresses")
    return fig
