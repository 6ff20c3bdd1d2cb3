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
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    columns: Sequence[str] | None = None,
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
    columns
        The table's columns to return (default: all of them); a feature that never
        reads the key leaves it out, and it is not copied.

    Returns
    -------
    pandas.DataFrame
        One row per (query, known row), in the order of ``table.merge(keys, on=on)``:
        the table's columns plus ``_q`` and ``_ref``. The input frames are not modified.
    """
    names = list(table.columns) if columns is None else list(columns)
    if len(keys) == 0 or len(table) == 0:
        cols = [*names, Q, REF]
        return pd.DataFrame({c: pd.Series(dtype=_dtype_of(table, keys, c)) for c in cols})
    refs = keys[REF].to_numpy()
    dates = table[date_col].to_numpy()
    rows, matched = match_rows(table[on], keys[on], where=dates < refs.max())
    known = dates[rows] < refs[matched]
    rows, matched = rows[known], matched[known]
    out = table[names].take(rows).reset_index(drop=True)
    out[Q] = keys[Q].to_numpy()[matched]
    out[REF] = refs[matched]
    if end_col is not None:
        end = out[end_col]
        out[end_col] = end.where(end < out[REF])
    return out


def match_rows(
    left: pd.Series, right: pd.Series, *, where: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The row pairs of an inner join of ``left`` and ``right`` on equal values.

    The pairs come in the order of pandas' ``merge(how="inner", sort=False)``: by left
    row, and the right rows of a left row in their own order. A missing value matches a
    missing value, as in ``merge``. Both sides are matched by integer code: each column
    is factorised once (fast on Arrow strings), and only the distinct values of the two
    sides are looked up in each other.

    Parameters
    ----------
    left, right
        The key columns.
    where
        Optional mask of the left rows that may match (the others never do).

    Returns
    -------
    tuple of numpy.ndarray
        Positions in ``left`` and in ``right`` (int64) of every matching pair.
    """
    left_codes, left_uniques = pd.factorize(left, use_na_sentinel=False)
    right_codes, right_uniques = pd.factorize(right, use_na_sentinel=False)
    to_right = positions_in(pd.Index(left_uniques), pd.Index(right_uniques))
    code = to_right[left_codes] if len(left_codes) else np.zeros(0, dtype=np.intp)
    return match_codes(code, right_codes, len(right_uniques), where=where)


def match_codes(
    left: np.ndarray, right: np.ndarray, n_codes: int, *, where: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`match_rows` for columns already coded as integers in ``[0, n_codes)``.

    A code of -1 matches nothing.
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    present = np.flatnonzero(right >= 0)
    order = present[np.argsort(right[present], kind="stable")]
    sizes = np.bincount(right[present], minlength=n_codes)
    first = np.cumsum(sizes) - sizes
    ok = left >= 0 if where is None else (left >= 0) & where
    left_rows = np.flatnonzero(ok)
    code = left[left_rows]
    n = sizes[code]
    if n.max(initial=0) <= 1:
        left_rows = left_rows[n == 1]
        return left_rows.astype(np.int64), order[first[left[left_rows]]].astype(np.int64)
    left_rows = np.repeat(left_rows, n)
    ends = np.cumsum(n)
    within = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - n, n)
    right_rows = order[np.repeat(first[code], n) + within]
    return left_rows.astype(np.int64), right_rows.astype(np.int64)


def positions_in(values: pd.Index, targets: pd.Index) -> np.ndarray:
    """The position of each of ``values`` in the distinct ``targets`` (-1: not there).

    Arrow strings are looked up by Arrow (``index_in``): pandas' lookup turns them into
    Python strings first. A missing value finds a missing value.
    """
    if _is_arrow_string(values) and _is_arrow_string(targets):
        found = pc.index_in(
            pa.array(values).cast(pa.large_string()),
            value_set=pa.array(targets).cast(pa.large_string()),
        )
        return np.asarray(found.fill_null(-1).to_numpy(), dtype=np.intp)
    return np.asarray(targets.get_indexer(values), dtype=np.intp)


def _is_arrow_string(index: pd.Index) -> bool:
    dtype = index.dtype
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


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
    O((rows + queries) log rows). Rows with a missing date never count. To ask many
    questions of one table, build its :class:`DatedKeys` once.
    """
    index = DatedKeys(table, key_col, [date_col])
    return index.count(date_col, index.codes_of(keys), dates)


_OFFSET, _SHIFT = np.int64(1 << 31), np.int64(1 << 32)


class DatedKeys:
    """The rows of a table as sorted (key, day) pairs, one array per date column.

    What :func:`count_before` builds for each question, built once: the key column
    factorised once and each date column sorted once, so that counting the rows of
    asked keys before asked dates is two binary searches.
    """

    def __init__(self, table: pd.DataFrame, key_col: str, date_cols: Sequence[str]) -> None:
        codes, uniques = pd.factorize(table[key_col])
        self._uniques = pd.Index(uniques)
        self._sorted: dict[str, np.ndarray] = {}
        for date_col in date_cols:
            dated = table[date_col].to_numpy()
            kept = ~np.isnat(dated) & (codes >= 0)
            row_days = np.asarray(dated[kept], dtype="datetime64[D]").astype(np.int64)
            self._sorted[date_col] = np.sort(
                codes[kept].astype(np.int64) * _SHIFT + row_days + _OFFSET
            )

    def codes_of(self, keys: pd.Series | np.ndarray) -> np.ndarray:
        """The code of each asked key among the table's keys (-1: not in the table)."""
        asked = pd.Series(keys) if isinstance(keys, np.ndarray) else keys
        asked_codes, asked_uniques = pd.factorize(asked)
        found = positions_in(pd.Index(asked_uniques), self._uniques)
        codes: np.ndarray = np.where(asked_codes >= 0, found[np.maximum(asked_codes, 0)], -1)
        return codes

    def count(self, date_col: str, codes: np.ndarray, dates: pd.Series | np.ndarray) -> np.ndarray:
        """Rows of each key (``codes``, from :meth:`codes_of`) with ``date_col`` before its date."""
        row_keys = self._sorted[date_col]
        query_days = pd.to_datetime(np.asarray(dates)).to_numpy("datetime64[D]").astype(np.int64)
        q = codes.astype(np.int64) * _SHIFT
        below = np.searchsorted(row_keys, q + query_days + _OFFSET, side="left")
        block = np.searchsorted(row_keys, q, side="left")
        return np.where(codes >= 0, below - block, 0).astype(np.int64)


def newest_first(rows: pd.DataFrame, order_col: str) -> pd.DataFrame:
    """Rows sorted by query, newest ``order_col`` first, with ``recency`` (0: the newest).

    The same rows, order and index labels as a stable ``sort_values([Q, order_col],
    ascending=[True, False])`` followed by a ``cumcount`` per query, done with one stable
    argsort of an integer key (query, rank of ``order_col``). ``order_col`` must have no
    missing values (the rows of an :func:`asof_join` on that column have none).
    """
    ranks, uniques = pd.factorize(rows[order_col], sort=True)
    newest = np.int64(len(uniques) - 1) - ranks.astype(np.int64)
    order = np.argsort(rows[Q].to_numpy().astype(np.int64) * len(uniques) + newest, kind="stable")
    out = rows.take(order)
    queries = out[Q].to_numpy()
    position = np.arange(len(out), dtype=np.int64)
    starts = np.ones(len(out), dtype=bool)
    starts[1:] = queries[1:] != queries[:-1]
    first = np.maximum.accumulate(np.where(starts, position, 0)) if len(out) else position
    return out.assign(recency=position - first)


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
