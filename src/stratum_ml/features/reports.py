"""Report (melding) features: how often, how recently, and about what."""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.asof import Q, asof_join, days_before, per_query
from stratum_ml.features.common import count_per_query
from stratum_ml.features.registry import feature, intermediate, parameterize

#: report categories that get a yearly count of their own
COUNTED_CATEGORIES = (
    "overcrowding",
    "nuisance",
    "subletting",
    "address_fraud",
    "exploitation",
    "pollution",
)


@intermediate
def report_rows(keys: pd.DataFrame, reports: pd.DataFrame) -> pd.DataFrame:
    """Reports about the query's address made before the reference date."""
    return asof_join(reports, keys, date_col="reported_at", columns=["reported_at", "category"])


def _recent_reports(report_rows: pd.DataFrame, days: int) -> pd.DataFrame:
    return report_rows.loc[days_before(report_rows, "reported_at") < days]


@parameterize(reports_all_90d={"days": 90}, reports_all_365d={"days": 365})
def reports_in_window(report_rows: pd.DataFrame, n_queries: int, days: int) -> pd.Series:
    """Reports in the {days} days before the reference date (count)."""
    return count_per_query(_recent_reports(report_rows, days), n_queries)


@parameterize(**{f"reports_{c}_365d": {"category": c, "days": 365} for c in COUNTED_CATEGORIES})
def reports_of_category(
    report_rows: pd.DataFrame, n_queries: int, category: str, days: int
) -> pd.Series:
    """Reports of category {category} in the {days} days before the reference date (count)."""
    rows = _recent_reports(report_rows, days)
    return count_per_query(rows.loc[rows["category"] == category], n_queries)


@feature
def days_since_last_report(report_rows: pd.DataFrame, n_queries: int) -> pd.Series:
    """Days since the most recent report about the address (days; NaN if none)."""
    days = days_before(report_rows, "reported_at").groupby(report_rows[Q]).min()
    return per_query(days.astype("float64"), n_queries)
