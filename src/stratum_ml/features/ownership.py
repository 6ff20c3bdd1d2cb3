"""Kadaster features: who owns the dwelling and how their portfolio moves."""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.asof import (
    REF,
    Q,
    asof_join,
    count_before,
    days_before,
    in_force,
    per_query,
)
from stratum_ml.features.common import count_per_query
from stratum_ml.features.registry import feature, intermediate
from stratum_ml.sources.contract import OWNER_TYPES
from stratum_ml.sources.tables import SourceTables

THEME = "ownership"


@intermediate(sources=("ownership",))
def ownership_rows(keys: pd.DataFrame, tables: SourceTables) -> pd.DataFrame:
    """Ownerships of the query's address that had begun by the reference date."""
    assert tables.ownership is not None
    return asof_join(tables.ownership, keys, date_col="owned_from", end_col="owned_until")


@intermediate()
def current_owner(ownership_rows: pd.DataFrame) -> pd.DataFrame:
    """The owner in force on the reference date (the most recent one if several), by query."""
    now = in_force(ownership_rows, "owned_until")
    now = now.sort_values([Q, "owned_from"], kind="stable").drop_duplicates(Q, keep="last")
    return now.set_index(Q)[["owner_id", "owner_type", "owned_from", REF]]


def _owner_count(
    tables: SourceTables, current_owner: pd.DataFrame, date_col: str, days_back: int, n: int
) -> pd.Series:
    """Rows of the current owner whose ``date_col`` lies in [ref - days_back, ref)."""
    assert tables.ownership is not None
    owners = current_owner["owner_id"].to_numpy()
    ref = current_owner[REF]
    counts = count_before(tables.ownership, "owner_id", date_col, owners, ref)
    if days_back:
        since = ref - pd.Timedelta(days=days_back)
        counts = counts - count_before(tables.ownership, "owner_id", date_col, owners, since)
    return per_query(pd.Series(counts.astype("float64"), index=current_owner.index), n)


@feature(theme=THEME, sources=("ownership",))
def owner_type(current_owner: pd.DataFrame, n_queries: int) -> pd.Series:
    """Type of the owner on the reference date (category)."""
    values = pd.Categorical(current_owner["owner_type"], categories=list(OWNER_TYPES))
    return per_query(pd.Series(values, index=current_owner.index), n_queries)


@feature(theme=THEME, sources=("ownership",))
def owner_dwellings(current_owner: pd.DataFrame, tables: SourceTables, n_queries: int) -> pd.Series:
    """Dwellings owned by the current owner on the reference date (count)."""
    acquired = _owner_count(tables, current_owner, "owned_from", 0, n_queries)
    sold = _owner_count(tables, current_owner, "owned_until", 0, n_queries)
    return acquired - sold


@feature(theme=THEME, sources=("ownership",))
def owner_acquisitions_24m(
    current_owner: pd.DataFrame, tables: SourceTables, n_queries: int
) -> pd.Series:
    """Dwellings the current owner acquired in the 730 days before the reference date (count)."""
    return _owner_count(tables, current_owner, "owned_from", 730, n_queries)


@feature(theme=THEME, sources=("ownership",))
def owner_sales_24m(current_owner: pd.DataFrame, tables: SourceTables, n_queries: int) -> pd.Series:
    """Dwellings the current owner sold in the 730 days before the reference date (count)."""
    return _owner_count(tables, current_owner, "owned_until", 730, n_queries)


@feature(theme=THEME, sources=("ownership",))
def ownership_changes_5y(ownership_rows: pd.DataFrame, n_queries: int) -> pd.Series:
    """Changes of owner of the dwelling in the 1826 days before the reference date (count)."""
    recent = ownership_rows.loc[days_before(ownership_rows, "owned_from") <= 1826]
    return count_per_query(recent, n_queries)


@feature(theme=THEME, sources=("ownership",))
def days_since_owner_change(current_owner: pd.DataFrame, n_queries: int) -> pd.Series:
    """Days since the current owner acquired the dwelling (days)."""
    days = (current_owner[REF] - current_owner["owned_from"]).dt.days
    return per_query(days.astype("float64"), n_queries)
