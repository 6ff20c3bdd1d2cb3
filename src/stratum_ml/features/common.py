"""Intermediates every theme uses: the query keys and each query's BAG address row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratum_ml.features.asof import Q, per_query, query_keys
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
    """Rows (or distinct values of ``column``) per query, 0 where there are none."""
    grouped = rows.groupby(Q, sort=False)
    counts = grouped.size() if column is None else grouped[column].nunique()
    return per_query(counts.astype("float64"), n, fill=0.0)


def safe_ratio(num: pd.Series, den: pd.Series, min_den: float = 1e-9) -> pd.Series:
    """``num / den`` where ``den`` is at least ``min_den``, else NaN."""
    out = num / den.where(den >= min_den)
    return out.replace([np.inf, -np.inf], np.nan)
