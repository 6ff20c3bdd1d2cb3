"""Ranking and probability metrics, and an honest precision@k under selective labels.

Every function here is pure: arrays in, numbers, small frozen dataclasses or
frames out. Nothing depends on how a model was trained.

A municipality visits the top of a ranked list, so the metrics that matter are
*ranking* metrics at a cut-off ``k`` (precision@k, lift@k), next to the usual
probability metrics (ROC AUC, PR AUC, Brier score, log loss, calibration).

Labels exist only for visited addresses, and most visits were chosen by earlier
policy (reports, projects, earlier models). Precision@k measured on those visits
("naive") answers the wrong question. :func:`honest_precision_at_k` estimates
precision@k of the *whole population* from the ``random_sample`` visits only;
:func:`naive_precision_at_k` is the biased number it should be reported beside.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

__all__ = [
    "DEFAULT_WIDEN_TO",
    "BootstrapResult",
    "HonestEstimate",
    "NaiveEstimate",
    "bootstrap_ci",
    "calibration_table",
    "classification_report",
    "honest_precision_at_k",
    "lift_at_k",
    "naive_precision_at_k",
    "plot_calibration",
    "precision_at_k",
    "ranking_report",
    "top_k_mask",
    "wilson_interval",
]

FloatArray = NDArray[np.float64]
Resamplable = NDArray[Any] | pd.Series | pd.DataFrame

#: Population fractions the honest estimator widens its region to, in this order,
#: when too few ``random_sample`` visits fall in the top k.
DEFAULT_WIDEN_TO: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


# --------------------------------------------------------------------------- input checks


def _as_1d_float(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _as_binary(values: ArrayLike, name: str) -> FloatArray:
    """0/1 labels as floats; NaN or any other value is an error."""
    array = _as_1d_float(values, name)
    if np.isnan(array).any():
        raise ValueError(f"{name} contains missing labels; pass labelled rows only")
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(f"{name} must contain only 0 and 1 (or False and True)")
    return array


def _as_scores(values: ArrayLike, name: str) -> FloatArray:
    array = _as_1d_float(values, name)
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN; every row needs a score to be ranked")
    return array


def _as_proba(values: ArrayLike, name: str) -> FloatArray:
    array = _as_scores(values, name)
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(f"{name} must be probabilities in [0, 1]")
    return array


def _check_same_length(**arrays: Sized) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays differ in length: {lengths}")


def _check_k(k: int, n: int | None) -> int:
    """``k`` as an int; it must be positive and, when ``n`` is given, at most ``n``."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if n is not None and k > n:
        raise ValueError(f"k={k} exceeds the number of rows ({n})")
    return int(k)


# --------------------------------------------------------------------------- ranking


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


# --------------------------------------------------------------------------- probabilities


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


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile bootstrap interval of a (scalar or vector) statistic.

    Attributes
    ----------
    estimate : numpy.ndarray
        The statistic on the original data (0-d for a scalar statistic).
    low, high : numpy.ndarray
        Lower and upper interval bounds, same shape; NaN where the statistic was
        undefined (NaN) in every replicate.
    n_valid : numpy.ndarray
        Number of replicates in which the statistic was defined, same shape.
    """

    estimate: FloatArray
    low: FloatArray
    high: FloatArray
    n_valid: NDArray[np.int64]


def _take(array: Resamplable, index: NDArray[np.intp]) -> Resamplable:
    if isinstance(array, pd.DataFrame | pd.Series):
        return array.iloc[index].reset_index(drop=True)
    return array[index]


def bootstrap_ci(
    stat_fn: Callable[..., ArrayLike],
    *arrays: Resamplable,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    frequency_weights: ArrayLike | None = None,
) -> BootstrapResult:
    """Percentile bootstrap confidence interval of ``stat_fn(*arrays)``.

    Rows (the first axis, shared by all ``arrays``) are resampled with
    replacement ``n_boot`` times and the statistic recomputed on each replicate.
    Replicates where the statistic is NaN (e.g. a group that drew no rows) are
    left out of that element's quantiles, and counted in ``n_valid``.

    With ``frequency_weights`` the rows are *distinct* rows, each standing for
    that many identical observations. Rows are then not resampled; instead each
    replicate draws multinomial counts over them and calls
    ``stat_fn(*arrays, counts)``, which is the same bootstrap as resampling the
    expanded data, at the cost of the distinct rows only.

    Parameters
    ----------
    stat_fn : callable
        ``stat_fn(*arrays) -> float or 1-d array`` (``stat_fn(*arrays, weights)``
        with ``frequency_weights``). It must not depend on row order.
    *arrays : numpy.ndarray, pandas.Series or pandas.DataFrame
        Data, all of the same length.
    n_boot : int, default 1000
        Number of replicates.
    seed : int, default 0
        Seed of the resampling.
    alpha : float, default 0.05
        The interval covers ``1 - alpha``.
    frequency_weights : array-like of int, optional
        Counts of the distinct rows, see above.

    Returns
    -------
    BootstrapResult

    Examples
    --------
    >>> res = bootstrap_ci(np.mean, np.array([0.0, 1.0] * 50), n_boot=200, seed=1)
    >>> bool(res.low < 0.5 < res.high)
    True
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array")
    n = len(arrays[0])
    _check_same_length(**{f"arrays[{i}]": a for i, a in enumerate(arrays)})
    if n == 0:
        raise ValueError("cannot bootstrap zero rows")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    if frequency_weights is None:
        estimate = np.asarray(stat_fn(*arrays), dtype=np.float64)

        def replicate() -> ArrayLike:
            index = rng.integers(0, n, size=n)
            return stat_fn(*(_take(a, index) for a in arrays))

    else:
        counts = _as_1d_float(frequency_weights, "frequency_weights")
        _check_same_length(arrays_0=arrays[0], frequency_weights=counts)
        if (counts < 0).any() or (counts != np.round(counts)).any():
            raise ValueError("frequency_weights must be non-negative whole numbers")
        total = int(counts.sum())
        if total == 0:
            raise ValueError("frequency_weights sum to zero")
        share = counts / total
        estimate = np.asarray(stat_fn(*arrays, counts), dtype=np.float64)

        def replicate() -> ArrayLike:
            drawn = rng.multinomial(total, share).astype(np.float64)
            return stat_fn(*arrays, drawn)

    replicates = np.empty((n_boot, estimate.size), dtype=np.float64)
    for b in range(n_boot):
        value = np.asarray(replicate(), dtype=np.float64)
        if value.shape != estimate.shape:
            raise ValueError(
                f"stat_fn returned shape {value.shape} on a replicate, {estimate.shape} on the data"
            )
        replicates[b] = value.ravel()
    valid = ~np.isnan(replicates)
    n_valid = valid.sum(axis=0)
    low = np.full(estimate.size, np.nan)
    high = np.full(estimate.size, np.nan)
    defined = n_valid > 0
    if defined.any():
        with np.errstate(invalid="ignore"):  # infinite ratios (reference rate 0) interpolate
            bounds = np.nanquantile(replicates[:, defined], [alpha / 2, 1 - alpha / 2], axis=0)
        low[defined], high[defined] = bounds[0], bounds[1]
    shape = estimate.shape
    return BootstrapResult(
        estimate=estimate,
        low=low.reshape(shape),
        high=high.reshape(shape),
        n_valid=n_valid.reshape(shape).astype(np.int64),
    )


# --------------------------------------------------------------------------- selective labels


@dataclass(frozen=True)
class HonestEstimate:
    """Precision@k of the whole population, estimated from random-sample visits.

    Attributes
    ----------
    estimate : float
        Hit rate of the ``random_sample`` visits inside the region (NaN if none).
    ci_low, ci_high : float
        Confidence interval of the region's hit rate.
    n : int
        Random-sample visits inside the region (the sample size behind the estimate).
    n_positive : int
        Of which found a violation.
    k : int
        The requested cut-off.
    region_k : int
        Population rows in the region actually used: all rows scoring at least
        ``threshold``. Equals ``k`` (up to ties) unless the region was widened.
    population : int
        Number of rows in the scored population.
    threshold : float
        Lowest score inside the region.
    widened : bool
        Whether the region was widened beyond the top ``k``.
    ci_method : str
        ``"wilson"`` or ``"bootstrap"``.
    confidence : float
        Coverage of the interval.
    region : str
        The region and, if widened, why, in one sentence for reports.
    """

    estimate: float
    ci_low: float
    ci_high: float
    n: int
    n_positive: int
    k: int
    region_k: int
    population: int
    threshold: float
    widened: bool
    ci_method: str
    confidence: float
    region: str

    @property
    def region_fraction(self) -> float:
        """Share of the population inside the region."""
        return self.region_k / self.population

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable fields (NaN stays NaN)."""
        return {"method": "honest", **asdict(self), "region_fraction": self.region_fraction}


@dataclass(frozen=True)
class NaiveEstimate:
    """Precision@k among visited addresses only; biased by the visit policy.

    Attributes
    ----------
    estimate : float
        Precision of the top ``n`` visited addresses ranked by the model.
    ci_low, ci_high : float
        Wilson interval for sampling noise only; it says nothing about the bias
        from which addresses were visited.
    n : int
        Visits ranked (``min(k, n_visited)``).
    k : int
        The requested cut-off.
    n_visited : int
        All visits with a label.
    confidence : float
        Coverage of the interval.
    region : str
        What was ranked, in one sentence for reports.
    """

    estimate: float
    ci_low: float
    ci_high: float
    n: int
    k: int
    n_visited: int
    confidence: float
    region: str

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable fields (NaN stays NaN)."""
        return {"method": "naive", **asdict(self)}


def honest_precision_at_k(
    scores_population: ArrayLike,
    visited_mask_random: ArrayLike,
    y_random: ArrayLike,
    k: int,
    *,
    min_random_visits: int = 30,
    widen_to: Sequence[float] = DEFAULT_WIDEN_TO,
    ci_method: Literal["wilson", "bootstrap"] = "wilson",
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> HonestEstimate:
    """Estimate precision@k of the whole population from random-sample visits.

    **Target.** The model scores every address; the municipality would visit the
    ``k`` highest. Precision@k is the share of violations among those ``k``
    addresses -- a property of the population, unknown because most of them
    were never visited.

    **Estimator.** Let ``t`` be the k-th highest population score and the
    *region* the addresses scoring at least ``t``. Among the ``random_sample``
    visits, take those whose address lies in the region; the estimate is their
    share of violations, ``n_positive / n``.

    **Why it is honest.** If the random-sample visits are a uniform random sample
    of the population, those that fall in the region are, given their number
    ``n``, a uniform random sample of the region. Their hit rate is then an
    unbiased estimate of the region's hit rate, which is precision@k. Visits
    chosen by reports, projects or earlier models are *not* used: they are
    concentrated where violations were expected and inflate the number (see
    :func:`naive_precision_at_k`).

    **Widening.** With a 2% random sample the top 100 of 50,000 addresses holds
    about two random visits: too few. When the region holds fewer than
    ``min_random_visits``, it is widened to the top ``f`` of the population for
    the first fraction ``f`` in ``widen_to`` (larger than ``k``) that holds
    enough; if none does, the widest is used. The result then estimates
    precision@``region_k`` instead of precision@k, and says so in ``widened``,
    ``region_k`` and ``region``. For a model whose hit rate falls with rank that
    understates precision@k. The choice of region depends only on *how many*
    random visits fall in each candidate region, never on their labels, so the
    estimate stays unbiased for the region it reports.

    **Interval.** Wilson score interval for a binomial proportion (default), or a
    percentile bootstrap over the visits in the region. Sampling without
    replacement from a finite region makes both slightly conservative.

    **Assumptions.** (1) ``random_sample`` visits are a uniform sample of the
    scored population, drawn independently of outcome and score. (2) A visit's
    label is what a visit at scoring time would have found (outcomes stable over
    the evaluation period; dropping inconclusive visits is harmless only if
    inconclusiveness is unrelated to violation). (3) The scores of visited
    addresses are the ones used to rank the population (same model, features as
    of the same reference date or of the visit date, never after it).

    Parameters
    ----------
    scores_population : array-like of shape (n,)
        Model score of every address in the population; no NaN.
    visited_mask_random : array-like of bool, shape (n,)
        True where the address has a labelled ``random_sample`` visit.
    y_random : array-like
        0/1 outcome of those visits (1 = violation): either of shape (n,),
        aligned with the population (entries outside the mask are ignored and may
        be NaN), or one entry per True in the mask, in population order.
    k : int
        The cut-off, ``1 <= k <= n``.
    min_random_visits : int, default 30
        Fewest random-sample visits a region must hold before it is used.
    widen_to : sequence of float, default DEFAULT_WIDEN_TO
        Population fractions to widen to, tried in increasing order.
    ci_method : {"wilson", "bootstrap"}, default "wilson"
        Interval method.
    confidence : float, default 0.95
        Coverage of the interval.
    n_boot : int, default 1000
        Bootstrap replicates (``ci_method="bootstrap"`` only).
    seed : int, default 0
        Bootstrap seed (``ci_method="bootstrap"`` only).

    Returns
    -------
    HonestEstimate
    """
    s = _as_scores(scores_population, "scores_population")
    mask = np.asarray(visited_mask_random)
    if mask.dtype != bool:
        raise ValueError("visited_mask_random must be a boolean array")
    _check_same_length(scores_population=s, visited_mask_random=mask)
    labels = np.asarray(y_random, dtype=np.float64)
    if labels.shape == s.shape:
        labels = labels[mask]
    elif labels.shape != (int(mask.sum()),):
        raise ValueError(
            f"y_random has {labels.size} entries; expected {s.size} (population-aligned) "
            f"or {int(mask.sum())} (one per random-sample visit)"
        )
    y = _as_binary(labels, "y_random[visited_mask_random]")
    population = s.size
    k = _check_k(k, population)
    if any(not 0.0 < f <= 1.0 for f in widen_to):
        raise ValueError("widen_to fractions must lie in (0, 1]")
    if ci_method not in ("wilson", "bootstrap"):
        raise ValueError(f"ci_method must be 'wilson' or 'bootstrap', got {ci_method!r}")

    visited_scores = s[mask]
    wider = {math.ceil(f * population) for f in widen_to}
    sizes = [k, *sorted(size for size in wider if size > k)]
    for size in sizes:
        threshold = _kth_highest(s, size)
        in_region = visited_scores >= threshold
        n = int(in_region.sum())
        if n >= min_random_visits:
            break
    region_k = int((s >= threshold).sum())
    widened = size > k
    hits = y[in_region]
    n_positive = int(hits.sum())
    estimate = n_positive / n if n else math.nan
    if ci_method == "wilson" or n == 0:
        ci_low, ci_high = wilson_interval(n_positive, n, confidence)
    else:
        boot = bootstrap_ci(np.mean, hits, n_boot=n_boot, seed=seed, alpha=1 - confidence)
        ci_low, ci_high = float(boot.low), float(boot.high)

    share = f"{region_k / population:.2%}"
    region = f"top {region_k} of {population} addresses ({share}), {n} random-sample visits"
    if widened:
        region += (
            f"; widened from the top {k}, which held fewer than {min_random_visits} "
            f"random-sample visits: this estimates precision@{region_k}, not precision@{k}"
        )
    if n < min_random_visits:
        region += f"; fewer than {min_random_visits} random-sample visits even so"
    return HonestEstimate(
        estimate=estimate,
        ci_low=ci_low,
        ci_high=ci_high,
        n=n,
        n_positive=n_positive,
        k=k,
        region_k=region_k,
        population=population,
        threshold=threshold,
        widened=widened,
        ci_method=ci_method,
        confidence=confidence,
        region=region,
    )


def naive_precision_at_k(
    scores_visited: ArrayLike,
    y_visited: ArrayLike,
    k: int,
    *,
    confidence: float = 0.95,
) -> NaiveEstimate:
    """Precision@k ranking only the visited addresses (all visit reasons).

    This is what a model looks like when evaluated on the labels at hand. It is
    biased whenever visits were chosen by earlier policy: visited addresses are
    richer in violations than the population, and the top k of the visits is a
    different set from the top k of the population. Report it beside
    :func:`honest_precision_at_k`, never instead of it.

    Parameters
    ----------
    scores_visited : array-like of shape (m,)
        Model scores of the visited addresses.
    y_visited : array-like of shape (m,)
        Their 0/1 outcomes.
    k : int
        Cut-off; when it exceeds the number of visits, all visits are ranked.
    confidence : float, default 0.95
        Coverage of the (sampling-noise-only) Wilson interval.

    Returns
    -------
    NaiveEstimate
    """
    y = _as_binary(y_visited, "y_visited")
    s = _as_scores(scores_visited, "scores_visited")
    _check_same_length(scores_visited=s, y_visited=y)
    k = _check_k(k, None)
    if y.size == 0:
        raise ValueError("no visits to rank")
    n = min(k, y.size)
    estimate = _precision_at_k(y, s, n)
    ci_low, ci_high = wilson_interval(estimate * n, n, confidence)
    return NaiveEstimate(
        estimate=estimate,
        ci_low=ci_low,
        ci_high=ci_high,
        n=n,
        k=k,
        n_visited=y.size,
        confidence=confidence,
        region=f"top {n} of {y.size} visited addresses (all visit reasons; biased by the "
        "visit policy)",
    )
