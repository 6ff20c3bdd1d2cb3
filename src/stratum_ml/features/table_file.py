"""Rows of a feature file (``stratum features --out``), read by address, a column at a time.

A feature file holds ``address_id`` and one column per feature, one row per address,
in any row order (the partitioned engine writes it partition by partition). Scoring
needs the model's columns of the dwellings only: reading the file whole, indexing it
by its string ids and taking the dwellings with ``.loc`` holds every column of every
address, and the selection, twice. :func:`read_feature_rows` finds the row of each
wanted address once (Arrow's hash of the ids, no Python string per row), then reads
one column at a time and keeps only the wanted rows of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: the column of a feature file that names the address of each row
ID_COLUMN = "address_id"


def file_rows(path: str | os.PathLike[str], ids: Sequence[str] | pd.Index) -> np.ndarray:
    """The row of each of ``ids`` in the Parquet feature file at ``path``.

    Raises
    ------
    ValueError
        When an id is not in the file, or the file has no ``address_id`` column.
    """
    schema = pq.read_schema(path)
    if ID_COLUMN not in schema.names:
        raise ValueError(f"{path}: no {ID_COLUMN} column: not a feature file")
    in_file = pq.read_table(path, columns=[ID_COLUMN]).column(ID_COLUMN)
    wanted = _arrow_ids(ids)
    rows = pc.index_in(wanted, value_set=in_file.cast(wanted.type))
    if rows.null_count:
        raise ValueError(
            f"{path}: {rows.null_count:,} of the {len(wanted):,} addresses asked for have "
            "no row (a feature file of another folder or date?)"
        )
    return np.asarray(rows.to_numpy(zero_copy_only=False), dtype=np.int64)


def _arrow_ids(ids: Sequence[str] | pd.Index) -> pa.Array | pa.ChunkedArray:
    """``ids`` as Arrow strings: pandas' Arrow-backed strings as they are, with no Python
    string made per id."""
    dtype = ids.dtype if isinstance(ids, pd.Index) else None
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return pa.array(ids.array)  # type: ignore[union-attr]
    return pa.array(np.asarray(ids, dtype=object), type=pa.string())


def read_feature_rows(
    path: str | os.PathLike[str],
    ids: Sequence[str] | pd.Index,
    columns: Sequence[str],
) -> pd.DataFrame:
    """``columns`` of the rows of ``ids`` in a Parquet feature file, in the order of ``ids``.

    The frame of ``pd.read_parquet(path).set_index("address_id").loc[ids, columns]``
    (the same values and types), without holding the other columns, the other rows or
    a string index of the whole file: each column is read whole, its wanted rows taken
    by position, and let go.

    Parameters
    ----------
    path
        A Parquet file of ``stratum features`` (any row order).
    ids
        The addresses wanted (unique).
    columns
        The feature columns wanted, in this order.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``address_id`` (``ids``), one column per name of ``columns``.

    Raises
    ------
    ValueError
        When an id is not in the file, or a column is missing.
    """
    file = pq.ParquetFile(path)
    missing = [c for c in columns if c not in file.schema_arrow.names]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)}")
    rows = file_rows(path, ids)
    index = ids if isinstance(ids, pd.Index) else pd.Index(ids)
    out: dict[str, Any] = {}
    for name in columns:
        values = file.read(columns=[name]).column(name).to_pandas()
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy()[rows]
            out[name] = pd.Categorical.from_codes(codes, dtype=values.dtype)
        else:
            out[name] = values.to_numpy()[rows]
        del values
    return pd.DataFrame(out, index=index.rename(ID_COLUMN), copy=False)


__all__ = ["ID_COLUMN", "file_rows", "read_feature_rows"]
