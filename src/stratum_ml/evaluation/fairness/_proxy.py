"""The proxy check: how well a model feature on its own predicts a protected attribute."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from stratum_ml.evaluation.fairness._spec import BoolArray, FloatArray


def _symmetric_auc(target: BoolArray, values: FloatArray) -> float:
    auc = float(roc_auc_score(target, values))
    return max(auc, 1.0 - auc)


def _proxy_auc(target: BoolArray, values: FloatArray) -> float:
    missing = np.isnan(values)
    if missing.all():
        return 0.5
    if not missing.any():
        return _symmetric_auc(target, values)
    low, high = np.nanmin(values) - 1.0, np.nanmax(values) + 1.0
    return max(
        _symmetric_auc(target, np.where(missing, low, values)),
        _symmetric_auc(target, np.where(missing, high, values)),
    )


def _target_encode(
    column: pd.Series, target: BoolArray, fold: NDArray[np.intp], n_folds: int, smoothing: float
) -> FloatArray:
    """Cross-fitted mean of ``target`` per category (missing is a category of its own)."""
    codes = pd.factorize(column, use_na_sentinel=False)[0]
    n_categories = int(codes.max()) + 1
    cell = codes * n_folds + fold
    shape = (n_categories, n_folds)
    count = np.bincount(cell, minlength=n_categories * n_folds).reshape(shape)
    hits = np.bincount(cell, weights=target, minlength=n_categories * n_folds).reshape(shape)
    out_count = count.sum(axis=1, keepdims=True) - count
    out_hits = hits.sum(axis=1, keepdims=True) - hits
    fold_count, fold_hits = count.sum(axis=0), hits.sum(axis=0)
    prior = (hits.sum() - fold_hits) / np.maximum(count.sum() - fold_count, 1)
    encoded = (out_hits + smoothing * prior) / (out_count + smoothing)
    return np.asarray(encoded[codes, fold], dtype=np.float64)


def _binary_target(column: pd.Series) -> tuple[BoolArray, BoolArray] | None:
    """(rows with a value, value == the larger of the two levels), or None if not binary."""
    known = column.notna().to_numpy()
    levels = sorted(column[known].unique(), key=str)
    if len(levels) != 2:
        return None
    return known, (column[known] == levels[1]).to_numpy(dtype=bool)


def proxy_check(
    features: pd.DataFrame,
    sensitive: pd.DataFrame,
    threshold: float = 0.7,
    *,
    n_folds: int = 5,
    smoothing: float = 10.0,
    seed: int = 0,
) -> pd.DataFrame:
    """How well each feature on its own predicts each binary protected attribute.

    For every feature and every binary attribute (exactly two distinct values;
    others such as ``district`` are skipped, and rows with the attribute missing
    are left out) the ROC AUC of the feature as a score for the attribute,
    taken as ``max(auc, 1 - auc)`` so that direction does not matter: 0.5 is no
    information, 1.0 a perfect stand-in.

    * Numeric and boolean features are used as they are. A missing value is a
      value of its own: the AUC is computed with missing values placed below
      and above all others, and the larger is kept, so that missingness that
      tracks an attribute is caught too.
    * Other features (strings, categories) are target-mean encoded with
      ``n_folds``-fold cross-fitting (each row encoded from the other folds,
      shrunk towards the fold's overall rate with weight ``smoothing``), so a
      many-valued identifier-like feature does not look predictive by
      memorising rows.

    Cost: one AUC or two per feature and attribute; thousands of rows times
    ~60 features times ~3 attributes take well under a few seconds.

    Parameters
    ----------
    features : pandas.DataFrame
        Model features, one row per address.
    sensitive : pandas.DataFrame
        Protected attributes, rows aligned by position with ``features``.
    threshold : float, default 0.7
        AUC from which a feature is flagged as a proxy.
    n_folds : int, default 5
        Folds for the cross-fitted encoding.
    smoothing : float, default 10.0
        Shrinkage of the encoding towards the overall rate, in rows.
    seed : int, default 0
        Seed of the fold assignment.

    Returns
    -------
    pandas.DataFrame
        ``feature, attribute, auc, flagged, n, encoding``, highest AUC first.
        ``auc`` is NaN when the attribute has one level only among the rows.
    """
    if len(features) != len(sensitive):
        raise ValueError(f"features has {len(features)} rows, sensitive has {len(sensitive)}")
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    rng = np.random.default_rng(seed)
    rows = []
    for attribute in sensitive.columns:
        binary = _binary_target(sensitive[attribute])
        if binary is None:
            continue
        known, target = binary
        fold = (rng.permutation(target.size) % n_folds).astype(np.intp)
        for feature in features.columns:
            column = features[feature][known]
            numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
            if numeric:
                values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                values = _target_encode(column, target, fold, n_folds, smoothing)
            auc = _proxy_auc(target, values) if 0 < target.sum() < target.size else math.nan
            rows.append(
                {
                    "feature": str(feature),
                    "attribute": str(attribute),
                    "auc": auc,
                    "flagged": bool(auc >= threshold),
                    "n": int(target.size),
                    "encoding": "value" if numeric else "cross-fitted target mean",
                }
            )
    columns = ["feature", "attribute", "auc", "flagged", "n", "encoding"]
    result = pd.DataFrame(rows, columns=columns)
    return result.sort_values("auc", ascending=False, ignore_index=True, na_position="last")
