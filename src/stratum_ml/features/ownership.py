"""Kadaster features: who owns the dwelling and how their portfolio moves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratum_ml.features.asof import (
    REF,
    DatedKeys,
    Q,
    asof_join,
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


@dataclass(frozen=True)
class OwnerPortfolios:
    """The ownership rows by owner and date, and the current owner of each query.

    Every portfolio count asks the same owners the same kind of question; the
    owner column is factorised and each date column sorted once for all of them.
    """

    rows: DatedKeys
    owners: np.ndarray  # each current owner's code in ``rows``
    current: pd.DataFrame  # current_owner: query index, reference date

    def count(self, date_col: str, days_back: int, n: int) -> pd.Series:
        """Rows of the current owner whose ``date_col`` lies in [ref - days_back, ref)."""
        ref = self.current[REF]
        counts = self.rows.count(date_col, self.owners, ref)
        if days_back:
            since = ref - pd.Timedelta(days=days_back)
            counts = counts - self.rows.count(date_col, self.owners, since)
        return per_query(pd.Series(counts.astype("float64"), index=self.current.index), n)


@intermediate
def owner_portfolios(ownership: pd.DataFrame, current_owner: pd.DataFrame) -> OwnerPortfolios:
    """Every owner's rows, by date acquired and sold, and the current owner of each query."""
    rows = DatedKeys(ownership, "owner_id", ["owned_from", "owned_until"])
    return OwnerPortfolios(rows, rows.codes_of(current_owner["owner_id"]), current_owner)


@feature
def owner_type(current_owner: pd.DataFrame, n_queries: int) -> pd.Series:
    """Type of the owner on the reference date (category)."""
    values = pd.Categorical(current_owner["owner_type"], categories=list(OWNER_TYPES))
    return per_query(pd.Series(values, index=current_owner.index), n_queries)


@feature
def owner_dwellings(owner_portfolios: OwnerPortfolios, n_queries: int) -> pd.Series:
    """Dwellings owned by the current owner on the reference date (count)."""
    acquired = owner_portfolios.count("owned_from", 0, n_queries)
    sold = owner_portfolios.count("owned_until", 0, n_queries)
    return acquired - sold


@parameterize(
    owner_acquisitions_24m={"event": "acquired", "days": 730},
    owner_sales_24m={"event": "sold", "days": 730},
)
def owner_portfolio_moves(
    owner_portfolios: OwnerPortfolios, n_queries: int, event: str, days: int
) -> pd.Series:
    """Dwellings the current owner {event} in the {days} days before the reference date
    (count)."""
    column = {"acquired": "owned_from", "sold": "owned_until"}[event]
    return owner_portfolios.count(column, days, n_queries)


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
