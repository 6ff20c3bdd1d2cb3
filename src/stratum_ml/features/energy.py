"""Energy features: yearly electricity and gas use (known once the year has ended)."""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.asof import Q, asof_join, newest_first, per_query
from stratum_ml.features.common import safe_ratio
from stratum_ml.features.registry import feature, intermediate


@intermediate
def energy_years(keys: pd.DataFrame, energy_usage: pd.DataFrame) -> pd.DataFrame:
    """Yearly totals known on the reference date (a year is known from 1 January after it)."""
    table = energy_usage
    known_from = pd.to_datetime(
        {"year": table["year"] + 1, "month": 1, "day": 1}, errors="coerce"
    ).astype("datetime64[ns]")
    rows = asof_join(
        table.assign(known_from=known_from),
        keys,
        date_col="known_from",
        columns=["year", "electricity_kwh", "gas_m3", "known_from"],
    )
    return newest_first(rows, "year")


def _latest(energy_years: pd.DataFrame, column: str, n: int) -> pd.Series:
    latest = energy_years.loc[energy_years["recency"] == 0].set_index(Q)[column]
    return per_query(latest.astype("float64"), n)


@feature
def electricity_kwh_year(energy_years: pd.DataFrame, n_queries: int) -> pd.Series:
    """Electricity use in the latest full year before the reference date (kWh)."""
    return _latest(energy_years, "electricity_kwh", n_queries)


@feature
def gas_m3_year(energy_years: pd.DataFrame, n_queries: int) -> pd.Series:
    """Gas use in the latest full year before the reference date (m3)."""
    return _latest(energy_years, "gas_m3", n_queries)


@feature
def electricity_kwh_per_registered_person(
    electricity_kwh_year: pd.Series, registered_persons: pd.Series
) -> pd.Series:
    """Electricity use in the latest full year per person registered now (kWh/person)."""
    return safe_ratio(electricity_kwh_year, registered_persons, 1)


@feature
def electricity_change_ratio(energy_years: pd.DataFrame, n_queries: int) -> pd.Series:
    """Electricity use in the latest full year over the year before it (ratio)."""
    rows = energy_years.loc[energy_years["recency"] <= 1]
    wide = rows.pivot_table(index=Q, columns="recency", values="electricity_kwh", aggfunc="first")
    if not {0, 1} <= set(wide.columns):
        return per_query(pd.Series(dtype="float64"), n_queries)
    return per_query(safe_ratio(wide[0], wide[1], 1.0), n_queries)
