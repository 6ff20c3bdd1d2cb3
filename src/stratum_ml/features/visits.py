"""Visit-history features: earlier home visits to the address and what they found."""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.asof import Q, asof_join, days_before, per_query
from stratum_ml.features.common import count_per_query
from stratum_ml.features.registry import feature, intermediate


@intermediate
def visit_rows(keys: pd.DataFrame, inspections: pd.DataFrame) -> pd.DataFrame:
    """Visits to the query's address strictly before the reference date."""
    return asof_join(
        inspections, keys, date_col="inspected_at", columns=["inspected_at", "outcome"]
    )


@feature
def previous_visits(visit_rows: pd.DataFrame, n_queries: int) -> pd.Series:
    """Home visits to the address before the reference date (count)."""
    return count_per_query(visit_rows, n_queries)


@feature
def previous_violations(visit_rows: pd.DataFrame, n_queries: int) -> pd.Series:
    """Earlier visits to the address that found a violation (count)."""
    return count_per_query(visit_rows.loc[visit_rows["outcome"] == "violation"], n_queries)


@feature
def days_since_last_visit(visit_rows: pd.DataFrame, n_queries: int) -> pd.Series:
    """Days since the most recent visit to the address (days; NaN if never visited)."""
    days = days_before(visit_rows, "inspected_at").groupby(visit_rows[Q]).min()
    return per_query(days.astype("float64"), n_queries)


@feature
def last_visit_found_violation(visit_rows: pd.DataFrame, n_queries: int) -> pd.Series:
    """1 when the most recent earlier visit found a violation, 0 when not (flag; NaN if none)."""
    latest = visit_rows.sort_values([Q, "inspected_at"], kind="stable").drop_duplicates(
        Q, keep="last"
    )
    flag = (latest["outcome"] == "violation").astype("float64")
    return per_query(pd.Series(flag.to_numpy(), index=latest[Q].to_numpy()), n_queries)
