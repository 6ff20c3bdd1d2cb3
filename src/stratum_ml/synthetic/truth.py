"""The ground truth of a synthetic municipality and a vectorised lookup for evaluation.

The truth table has one row per violation episode: ``address_id``,
``mechanism`` (one of :data:`MECHANISMS`), ``start_date`` and ``end_date``
(NaT: still running on the extract date). An address is *in violation at date
D* iff some episode has ``start_date <= D < end_date`` (or no end date).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from stratum_ml.io import table_format

MECHANISMS = ("address_fraud", "illegal_room_rental", "overcrowding", "exploitation")
TRUTH_COLUMNS = ("address_id", "mechanism", "start_date", "end_date")

_SECOND = np.int64(1_000_000_000)
_ORIGIN = np.datetime64("1800-01-01", "s").astype("int64")
_BITS = np.int64(35)  # seconds since 1800 fit in 35 bits until the year 2888
_FOREVER = (np.int64(1) << _BITS) - 1


def _seconds(values: np.ndarray) -> np.ndarray:
    s = values.astype("datetime64[s]").astype("int64") - _ORIGIN
    return np.asarray(np.clip(s, 0, _FOREVER - 1))


def truth_at(
    truth: pd.DataFrame,
    address_ids: Iterable[str] | pd.Series | np.ndarray,
    dates: dt.date | pd.Timestamp | np.datetime64 | str | Iterable[object],
    mechanism: str | Iterable[str] | None = None,
) -> np.ndarray:
    """Whether each address was in violation on its date (vectorised).

    Parameters
    ----------
    truth
        The truth table (columns ``address_id, mechanism, start_date, end_date``).
    address_ids
        One address per query.
    dates
        One date for all queries, or one per query.
    mechanism
        Count only episodes of this mechanism (or these mechanisms).

    Returns
    -------
    numpy.ndarray of bool, one per query.

    Examples
    --------
    >>> truth = pd.DataFrame({
    ...     "address_id": ["0479010000000001"], "mechanism": ["overcrowding"],
    ...     "start_date": pd.to_datetime(["2024-01-01"]), "end_date": pd.to_datetime([None])})
    >>> truth_at(truth, ["0479010000000001", "0479010000000001"], ["2023-12-31", "2025-06-01"])
    array([False,  True])
    """
    ids = pd.Index(
        pd.Series(
            np.asarray(
                list(address_ids)
                if not isinstance(address_ids, (pd.Series, np.ndarray))
                else address_ids
            ),
            dtype="str",
        )
    )
    n = len(ids)
    if isinstance(dates, (dt.date, pd.Timestamp, np.datetime64, str)):
        q_day = np.full(n, pd.Timestamp(dates).to_datetime64().astype("datetime64[ns]"))
    else:
        q_day = pd.to_datetime(
            pd.Series(list(dates) if not isinstance(dates, (pd.Series, np.ndarray)) else dates)
        ).to_numpy("datetime64[ns]")
        if len(q_day) != n:
            raise ValueError(f"{n} address ids but {len(q_day)} dates")
    rows = truth
    if mechanism is not None:
        wanted = [mechanism] if isinstance(mechanism, str) else list(mechanism)
        unknown = set(wanted) - set(MECHANISMS)
        if unknown:
            raise ValueError(f"unknown mechanism(s) {sorted(unknown)}; expected {MECHANISMS}")
        rows = rows.loc[rows["mechanism"].astype("str").isin(wanted)]
    if n == 0 or len(rows) == 0:
        return np.zeros(n, dtype=bool)

    t_ids = pd.Index(rows["address_id"].astype("str"))
    codes, uniques = pd.factorize(t_ids)
    start = _seconds(pd.to_datetime(rows["start_date"]).to_numpy("datetime64[ns]"))
    end_raw = pd.to_datetime(rows["end_date"]).to_numpy("datetime64[ns]")
    end = np.where(np.isnat(end_raw), _FOREVER, _seconds(end_raw))
    order = np.lexsort((start, codes))
    codes, start, end = codes[order].astype("int64"), start[order], end[order]
    key = (codes << _BITS) | start
    # the latest end among episodes that began so far (per address, thanks to the offset)
    reach = np.maximum.accumulate((codes << _BITS) | end)

    q_code = uniques.get_indexer(ids).astype("int64")
    q_sec = np.where(np.isnat(q_day), -1, _seconds(q_day))
    known = (q_code >= 0) & (q_sec >= 0)
    q_key = (np.maximum(q_code, 0) << _BITS) | np.maximum(q_sec, 0)
    i = np.searchsorted(key, q_key, side="right") - 1
    ii = np.maximum(i, 0)
    hit = known & (i >= 0) & (codes[ii] == q_code) & ((reach[ii] & _FOREVER) > q_sec)
    return np.asarray(hit, dtype=bool)


def normalise_truth(truth: pd.DataFrame) -> pd.DataFrame:
    """The truth columns with fixed dtypes: ``str``, categorical mechanism, ``datetime64[ns]``."""
    return pd.DataFrame(
        {
            "address_id": truth["address_id"].astype("str"),
            "mechanism": pd.Categorical(
                truth["mechanism"].astype("str"), categories=list(MECHANISMS)
            ),
            "start_date": pd.to_datetime(truth["start_date"]).astype("datetime64[ns]"),
            "end_date": pd.to_datetime(truth["end_date"]).astype("datetime64[ns]"),
        },
        index=pd.RangeIndex(len(truth)),
    )


def read_truth(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a truth file written by ``generate_municipality`` (CSV or Parquet by suffix)."""
    path = Path(path)
    if table_format(path) == "csv":
        raw = pd.read_csv(
            path,
            dtype={"address_id": "str", "mechanism": "str"},
            keep_default_na=False,
            na_values={"end_date": [""]},
        )
    else:
        raw = pd.read_parquet(path)
    missing = set(TRUTH_COLUMNS) - set(raw.columns)
    if missing:
        raise ValueError(f"{path}: not a truth file, missing column(s) {sorted(missing)}")
    return normalise_truth(raw)
