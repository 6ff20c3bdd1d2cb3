"""Input checks shared by the metrics: 1-d arrays, 0/1 labels, scores, k."""

from __future__ import annotations

from collections.abc import Sized

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


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
