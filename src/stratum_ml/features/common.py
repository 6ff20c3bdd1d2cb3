"""Intermediates every theme uses: the query keys and each query's BAG address row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratum_ml.features.asof import Q, query_keys
from stratum_ml.features.registry import intermediate


@intermediate
def keys(queries: pd.DataFrame) -> pd.DataFrame:
    """Join keys (address_id, _q, _ref) of every query."""
    return query_keys(queries)


@intermediate
def n_queries(queries: pd.DataFrame) -> int:
    """Number of queries."""
    return len(queries)


@intermediate
def query_addresses(keys: pd.DataFrame, addresses: pd.DataFrame) -> pd.DataFrame:
    """The BAG row of each query's address, indexed by query position."""
    rows = keys.merge(addresses, on="address_id", how="left", sort=False)
    return rows.set_index(Q).sort_index()


def count_per_query(rows: pd.DataFrame, n: int, column: str | None = None) -> pd.Series:
    """Rows (or distinct values of ``column``) per query, 0 where there are none.

    Counted on integer codes (``np.bincount``), as ``groupby(_q).size()`` or
    ``.nunique()`` would count them: a missing value of ``column`` is not counted.
    """
    queries = rows[Q].to_numpy().astype(np.int64)
    if column is not None:
        codes, _ = pd.factorize(rows[column])
        valued = codes >= 0
        queries, codes = queries[valued], codes[valued]
        queries = queries[first_of_pairs(queries, codes)]
    queries = queries[(queries >= 0) & (queries < n)]
    counts = np.bincount(queries, minlength=n).astype("float64")
    return pd.Series(counts, index=pd.RangeIndex(n), name=column)


def first_of_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct pair ``(a[i], b[i])``, in order.

    ``a`` and ``b`` are non-negative integers (query positions, codes).
    """
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    pair = a.astype(np.int64) * (int(b.max()) + 1) + b.astype(np.int64)
    return np.flatnonzero(~pd.Series(pair).duplicated().to_numpy())


def safe_ratio(num: pd.Series, den: pd.Series, min_den: float = 1e-9) -> pd.Series:
    """``num / den`` where ``den`` is at least ``min_den``, else NaN."""
    out = num / den.where(den >= min_den)
    return out.replace([np.inf, -np.inf], np.nan)
