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
from stratum_ml.features.registry import feature, intermediate, parameterize
from stratum_ml.sources.contract import OWNER_TYPES


@intermediate
def ownership_rows(keys: pd.DataFrame, ownership: pd.DataFrame) -> pd.DataFrame:
    """Ownerships of the query's address that had begun by the reference date."""
    return asof_join(
        ownership,
        keys,
        date_col="owned_from",
        end_col="owned_until",
        columns=["owner_id", "owner_type", "owned_from", "owned_until"],
    )


@intermediate
def current_owner(ownership_rows: pd.DataFrame) -> pd.DataFrame:
    """The owner in force on the reference date (the most recent one if several), by query."""
    now = in_force(ownership_rows, "owned_until")
    now = now.sort_values([Q, "owned_from"], kind="stable").drop_duplicates(Q, keep="last")
    return now.set_index(Q)[["owner_id", "owner_type", "owned_from", REF]]


def _owner_count(
    ownership: pd.DataFrame, current_owner: pd.DataFrame, date_col: str, days_back: int, n: int
) -> pd.Series:
    """Rows of the current owner whose ``date_col`` lies in [ref - days_back, ref)."""
    owners = current_owner["owner_id"]
    ref = current_owner[REF]
    counts = count_before(ownership, "owner_id", date_col, owners, ref)
    if days_back:
        since = ref - pd.Timedelta(days=days_back)
        counts = counts - count_before(ownership, "owner_id", date_col, owners, since)
    return per_query(pd.Series(counts.astype("float64"), index=current_owner.index), n)


@feature
def owner_type(current_owner: pd.DataFrame, n_queries: int) -> pd.Series:
    """Type of the owner on the reference date (category)."""
    values = pd.Categorical(current_owner["owner_type"], categories=list(OWNER_TYPES))
    return per_query(pd.Series(values, index=current_owner.index), n_queries)


@feature
def owner_dwellings(
    current_owner: pd.DataFrame, ownership: pd.DataFrame, n_queries: int
) -> pd.Series:
    """Dwellings owned by the current owner on the reference date (count)."""
    acquired = _owner_count(ownership, current_owner, "owned_from", 0, n_queries)
    sold = _owner_count(ownership, current_owner, "owned_until", 0, n_queries)
    return acquired - sold


@parameterize(
    owner_acquisitions_24m={"event": "acquired", "days": 730},
    owner_sales_24m={"event": "sold", "days": 730},
)
def owner_portfolio_moves(
    current_owner: pd.DataFrame, ownership: pd.DataFrame, n_queries: int, event: str, days: int
) -> pd.Series:
    """Dwellings the current owner {event} in the {days} days before the reference date
    (count)."""
    column = {"acquired": "owned_from", "sold": "owned_until"}[event]
    return _owner_count(ownership, current_owner, column, days, n_queries)


@parameterize(ownership_changes_5y={"days": 1826})
def ownership_changes(ownership_rows: pd.DataFrame, n_queries: int, days: int) -> pd.Series:
    """Changes of owner of the dwelling in the {days} days before the reference date (count)."""
    recent = ownership_rows.loc[days_before(ownership_rows, "owned_from") <= days]
    return count_per_query(recent, n_queries)


@feature
def days_since_owner_change(current_owner: pd.DataFrame, n_queries: int) -> pd.Series:
    """Days since the current owner acquired the dwelling (days)."""
    days = (current_owner[REF] - current_owner["owned_from"]).dt.days
    return per_query(days.astype("float64"), n_queries)
