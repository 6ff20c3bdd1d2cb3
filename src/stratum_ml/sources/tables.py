"""The in-memory form of a validated source folder.

Downstream code never reads raw files: it receives a :class:`SourceTables`
from :func:`stratum_ml.sources.load_sources` (or from the synthetic generator,
which builds the same object in memory).

Column dtypes after loading (the *normalised* form):

* ``string`` columns: pandas ``str`` dtype (missing = NaN);
* ``int`` columns: ``int64``;
* ``float`` columns: ``float64``;
* ``date`` and ``timestamp`` columns: ``datetime64[ns]``, naive (timestamps with
  a zone are converted to Europe/Amsterdam local time first);
* ``category`` columns: ``pandas.Categorical`` whose categories are exactly the
  contract's domain, in contract order.

``audit_attributes`` is deliberately *not* a field: protected attributes live in
a separate object (:class:`AuditTables`) that only the fairness audit receives,
so no feature function can reach them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from stratum_ml.sources.contract import TABLES, ColumnSpec, TableSpec


def sources_fingerprint(fingerprints: Mapping[str, str]) -> str:
    """One sha256 over every source file's sha256 (sorted by file): the data's identity.

    Training records it with a model version, a scoring run with the run. Tables
    built in memory read no files: their fingerprint is that of no files.
    """
    canonical = json.dumps(dict(sorted(fingerprints.items())), separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SourceTables:
    """Validated model-input tables. Optional tables are ``None`` when absent."""

    addresses: pd.DataFrame
    registrations: pd.DataFrame
    inspections: pd.DataFrame
    water_usage: pd.DataFrame | None = None
    energy_usage: pd.DataFrame | None = None
    businesses: pd.DataFrame | None = None
    ownership: pd.DataFrame | None = None
    reports: pd.DataFrame | None = None
    #: CBS district and neighbourhood names and boundaries; labels lists, never a feature
    areas: pd.DataFrame | None = None
    #: sha256 of every source file read, by file name (empty when built in memory)
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    source_dir: Path | None = None
    #: the extract date the folder declares (``extract.json``); see ``sources.extract``
    declared_extract_date: dt.date | None = None

    @property
    def available(self) -> tuple[str, ...]:
        """Names of the tables that are present."""
        return tuple(name for name, df in self.items())

    def items(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """``(table name, frame)`` for every present table, in contract order."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, pd.DataFrame):
                yield f.name, value

    def get(self, name: str) -> pd.DataFrame | None:
        """The table called ``name``, or ``None`` when it is absent."""
        if name not in TABLES or TABLES[name].audit_only:
            raise KeyError(f"{name!r} is not a model-input table")
        value = getattr(self, name)
        return value if isinstance(value, pd.DataFrame) else None


@dataclass(frozen=True)
class AuditTables:
    """Protected attributes: read by the fairness audit only, never by features."""

    audit_attributes: pd.DataFrame
    fingerprints: Mapping[str, str] = field(default_factory=dict)


def normalise_column(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    """Cast an already-validated column to its normalised dtype (see module doc)."""
    if spec.kind == "string":
        if isinstance(series.dtype, pd.StringDtype) and series.dtype.na_value is np.nan:
            return series  # pandas' str dtype already: missing is NaN
        return series.astype("str").where(series.notna(), np.nan)
    if spec.kind == "int":
        return series.astype("int64")
    if spec.kind == "float":
        return series.astype("float64")
    if spec.kind in ("date", "timestamp"):
        values = pd.to_datetime(series, errors="raise")
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("Europe/Amsterdam").dt.tz_localize(None)
        return values.astype("datetime64[ns]")
    if spec.kind == "category":
        assert spec.domain is not None
        return pd.Series(
            pd.Categorical(series, categories=list(spec.domain)),
            index=series.index,
            name=series.name,
        )
    raise ValueError(f"unknown column kind {spec.kind!r}")


def normalise_table(df: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Contract columns only, in contract order, with normalised dtypes."""
    df = df.reset_index(drop=True)
    out = pd.DataFrame(
        {c.name: normalise_column(df[c.name], c) for c in spec.columns if c.name in df.columns},
        index=pd.RangeIndex(len(df)),
    )
    return out
