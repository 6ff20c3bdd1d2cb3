"""The one point-in-time helper that every feature goes through.

A *query* is a pair (address, reference date). Scoring asks one query per
address with the scoring date; training asks one query per past visit with
the visit date. :func:`asof_join` attaches to each query the rows of a source
table that were known on its reference date:

* a row counts only if its own date (``date_col``) is **strictly before** the
  reference date: what happened on the day of a visit is not known before it;
* an end date (``end_col``: ``registered_until``, ``owned_until``, ...) that is
  not before the reference date is *censored* to NaT: on the reference date the
  stay or ownership was still in force, and its later end is future knowledge.
  :func:`in_force` keeps exactly the rows whose (censored) end is NaT.

Training and scoring call the same code with different query frames, so a
feature cannot be computed one way when training and another when scoring.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

Q = "_q"  #: column with the query's position (0..n-1)
REF = "_ref"  #: column with the query's reference date


def make_queries(
    address_ids: Iterable[str] | pd.Series,
    ref_dates: dt.date | pd.Timestamp | Iterable[dt.date | pd.Timestamp] | pd.Series,
    *,
    index: pd.Index | None = None,
) -> pd.DataFrame:
    """Build a query frame: columns ``address_id`` and ``ref_date`` (datetime64[ns]).

    Parameters
    ----------
    address_ids
        The address of every query.
    ref_dates
        One reference date for all queries, or one per query.
    index
        The key of each query (e.g. inspection ids); default: the address ids.

    Examples
    --------
    >>> q = make_queries(["0479010000000001"], dt.date(2025, 1, 1))
    >>> q.loc["0479010000000001", "ref_date"]
    Timestamp('2025-01-01 00:00:00')
    """
    ids = pd.Series(list(address_ids) if not isinstance(address_ids, pd.Series) else address_ids)
    ids = ids.astype("str").reset_index(drop=True)
    if isinstance(ref_dates, (dt.date, pd.Timestamp)):
        refs = pd.Series(pd.Timestamp(ref_dates), index=ids.index)
    else:
        values = ref_dates.to_numpy() if isinstance(ref_dates, pd.Series) else list(ref_dates)
        refs = pd.Series(pd.to_datetime(values), index=ids.index)
        if len(refs) != len(ids):
            raise ValueError(f"{len(ids)} addresses but {len(refs)} reference dates")
    if refs.isna().any():
        raise ValueError("every query needs a reference date")
    frame = pd.DataFrame(
        {"address_id": ids.to_numpy(), "ref_date": refs.astype("datetime64[ns]").dt.normalize()}
    )
    frame.index = pd.Index(ids.to_numpy(), name="address_id") if index is None else index
    return frame


def query_keys(queries: pd.DataFrame, on: str = "address_id") -> pd.DataFrame:
    """The join keys of a query frame: ``on``, ``_q`` (position) and ``_ref``."""
    return pd.DataFrame(
        {
            on: queries["address_id"].to_numpy(),
            Q: np.arange(len(queries), dtype=np.int64),
            REF: queries["ref_date"].to_numpy(),
        }
    )


def asof_join(
    table: pd.DataFrame,
    keys: pd.DataFrame,
    *,
    date_col: str,
    end_col: str | None = None,
    on: str = "address_id",
) -> pd.DataFrame:
    """Rows of ``table`` known at each query's reference date, with the query attached.

    Parameters
    ----------
    table
        A normalised source table (or a frame derived from one).
    keys
        Columns ``on``, ``_q`` and ``_ref``: which key each query asks about and when
        (:func:`query_keys` gives them for addresses; other keys, such as an owner or a
        person, are built the same way).
    date_col
        The row's own date; the row counts only where ``date_col < _ref``.
    end_col
        Optional end date of a stay or an ownership; values ``>= _ref`` become NaT.
    on
        The column to join on.

    Returns
    -------
    pandas.DataFrame
        One row per (query, known row): the table's columns plus ``_q`` and ``_ref``.
        The input frames are not modified.
    """
    if len(keys) == 0 or len(table) == 0:
        cols = [*table.columns, Q, REF]
        return pd.DataFrame({c: pd.Series(dtype=_dtype_of(table, keys, c)) for c in cols})
    latest = keys[REF].max()
    candidates = table.loc[table[date_col] < latest]
    joined = candidates.merge(keys[[on, Q, REF]], on=on, how="inner", sort=False)
    joined = joined.loc[joined[date_col] < joined[REF]]
    if end_col is not None:
        end = joined[end_col]
        joined = joined.assign(**{end_col: end.where(end < joined[REF])})
    out: pd.DataFrame = joined.reset_index(drop=True)
    return out


def count_before(
    table: pd.DataFrame,
    key_col: str,
    date_col: str,
    keys: pd.Series | np.ndarray,
    dates: pd.Series | np.ndarray,
) -> np.ndarray:
    """Rows of ``table`` with the same key whose ``date_col`` is strictly before each date.

    The as-of rule for counting over large groups (an owner's thousands of dwellings)
    without joining every query to every row: one sort and two binary searches,
    O((rows + queries) log rows). Rows with a missing date never count.
    """
    rows = table.loc[table[date_col].notna(), [key_col, date_col]]
    codes, uniques = pd.factorize(rows[key_col], sort=False)
    row_days = rows[date_col].to_numpy("datetime64[D]").astype(np.int64)
    query_codes = pd.Index(uniques).get_indexer(np.asarray(keys))
    query_days = pd.to_datetime(np.asarray(dates)).to_numpy("datetime64[D]").astype(np.int64)
    offset, shift = np.int64(1 << 31), np.int64(1 << 32)
    row_keys = np.sort(codes.astype(np.int64) * shift + row_days + offset)
    known = query_codes >= 0
    q = query_codes.astype(np.int64) * shift
    below = np.searchsorted(row_keys, q + query_days + offset, side="left")
    block = np.searchsorted(row_keys, q, side="left")
    return np.where(known, below - block, 0).astype(np.int64)


def in_force(joined: pd.DataFrame, end_col: str) -> pd.DataFrame:
    """The rows of an :func:`asof_join` result still in force on the reference date."""
    return joined.loc[joined[end_col].isna()]


def days_before(joined: pd.DataFrame, date_col: str) -> pd.Series:
    """Days from ``date_col`` to the reference date (positive: the row is older)."""
    return (joined[REF] - joined[date_col]).dt.days


def per_query(values: pd.Series, n: int, fill: float | None = np.nan) -> pd.Series:
    """Align a series indexed by ``_q`` to all ``n`` queries (missing -> ``fill``)."""
    out = values.reindex(pd.RangeIndex(n))
    if fill is not None and not (isinstance(fill, float) and np.isnan(fill)):
        out = out.fillna(fill)
    return out


def _dtype_of(table: pd.DataFrame, keys: pd.DataFrame, col: str) -> Any:
    if col in table.columns:
        return table[col].dtype
    return keys[col].dtype
