"""Report (melding) features: how often, how recently, and about what."""

from __future__ import annotations

from types import FunctionType
from typing import cast

import pandas as pd

from stratum_ml.features.asof import Q, asof_join, days_before, per_query
from stratum_ml.features.common import count_per_query
from stratum_ml.features.registry import feature, feature_variant, intermediate
from stratum_ml.sources.tables import SourceTables

THEME = "reports"

#: (category or None for all, window in days): one feature each
REPORT_COUNTS: tuple[tuple[str | None, int], ...] = (
    (None, 90),
    (None, 365),
    ("overcrowding", 365),
    ("nuisance", 365),
    ("subletting", 365),
    ("address_fraud", 365),
    ("exploitation", 365),
    ("pollution", 365),
)


@intermediate(sources=("reports",))
def report_rows(keys: pd.DataFrame, tables: SourceTables) -> pd.DataFrame:
    """Reports about the query's address made before the reference date."""
    assert tables.reports is not None
    return asof_join(tables.reports, keys, date_col="reported_at")


def _report_count(category: str | None, days: int) -> FunctionType:
    def count(report_rows: pd.DataFrame, n_queries: int) -> pd.Series:
        rows = report_rows.loc[days_before(report_rows, "reported_at") < days]
        if category is not None:
            rows = rows.loc[rows["category"] == category]
        return count_per_query(rows, n_queries)

    return cast(FunctionType, count)


for _category, _days in REPORT_COUNTS:
    _what = "Reports" if _category is None else f"Reports of category {_category}"
    feature_variant(
        _report_count(_category, _days),
        name=f"reports_{_category or 'all'}_{_days}d",
        doc=f"{_what} in the {_days} days before the reference date (count).",
        theme=THEME,
        sources=("reports",),
    )


@feature(theme=THEME, sources=("reports",))
def days_since_last_report(report_rows: pd.DataFrame, n_queries: int) -> pd.Series:
    """Days since the most recent report about the address (days; NaN if none)."""
    days = days_before(report_rows, "reported_at").groupby(report_rows[Q]).min()
    return per_query(days.astype("float64"), n_queries)
