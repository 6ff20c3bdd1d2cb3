"""Kadaster features: who owns the dwelling and how their portfolio moves."""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.asof import REF, Q, asof_join, days_before, in_force, per_query
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


@intermediate(sources=("ownership",))
def owner_portfolio(current_owner: pd.DataFrame, tables: SourceTables) -> pd.DataFrame:
    """Every ownership of the current owner known on the reference date."""
    assert tables.ownership is not None
    owner_keys = pd.DataFrame(
        {
            "owner_id": current_owner["owner_id"].to_numpy(),
            Q: current_owner.index.to_numpy(),
            REF: current_owner[REF].to_numpy(),
        }
    )
    return asof_join(
        tables.ownership, owner_keys, date_col="owned_from", end_col="owned_until", on="owner_id"
    )


def _portfolio_count(rows: pd.DataFrame, portfolio: pd.DataFrame, n: int) -> pd.Series:
    """Rows per query where the query has a known owner (0), NaN where it has none."""
    counts = rows.groupby(Q).size().astype("float64")
    return per_query(counts.reindex(portfolio[Q].unique(), fill_value=0.0), n)


@feature(theme=THEME, sources=("ownership",))
def owner_type(current_owner: pd.DataFrame, n_queries: int) -> pd.Series:
    """Type of the owner on the reference date (category)."""
    values = pd.Categorical(current_owner["owner_type"], categories=list(OWNER_TYPES))
    return per_query(pd.Series(values, index=current_owner.index), n_queries)


@feature(theme=THEME, sources=("ownership",))
def owner_dwellings(owner_portfolio: pd.DataFrame, n_queries: int) -> pd.Series:
    """Dwellings owned by the current owner on the reference date (count)."""
    now = in_force(owner_portfolio, "owned_until")
    return per_query(now.groupby(Q)["address_id"].nunique().astype("float64"), n_queries)


@feature(theme=THEME, sources=("ownership",))
def owner_acquisitions_24m(owner_portfolio: pd.DataFrame, n_queries: int) -> pd.Series:
    """Dwellings the current owner acquired in the 730 days before the reference date (count)."""
    recent = owner_portfolio.loc[days_before(owner_portfolio, "owned_from") <= 730]
    return _portfolio_count(recent, owner_portfolio, n_queries)


@feature(theme=THEME, sources=("ownership",))
def owner_sales_24m(owner_portfolio: pd.DataFrame, n_queries: int) -> pd.Series:
    """Dwellings the current owner sold in the 730 days before the reference date (count)."""
    ended = owner_portfolio.loc[owner_portfolio["owned_until"].notna()]
    recent = ended.loc[days_before(ended, "owned_until") <= 730]
    return _portfolio_count(recent, owner_portfolio, n_queries)


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
