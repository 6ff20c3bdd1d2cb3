"""The shared percentile bootstrap (rows resampled, or frequency weights)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from stratum_ml.evaluation.metrics._checks import FloatArray, _as_1d_float, _check_same_length

Resamplable = NDArray[Any] | pd.Series | pd.DataFrame


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
