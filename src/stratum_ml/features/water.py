"""Drinking-water features: use per registered person against what is expected."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratum_ml.features.asof import REF, Q, asof_join, days_before, newest_first, per_query
from stratum_ml.features.common import count_per_query, safe_ratio
from stratum_ml.features.registry import FeatureParams, feature, intermediate, parameterize

DAYS_PER_YEAR = 365.25


@intermediate
def water_readings(keys: pd.DataFrame, water_usage: pd.DataFrame) -> pd.DataFrame:
    """Meter readings whose period ended before the reference date, newest first per query."""
    rows = asof_join(
        water_usage,
        keys,
        date_col="period_end",
        columns=["period_start", "period_end", "volume_m3"],
    )
    days = (rows["period_end"] - rows["period_start"]).dt.days.clip(lower=1)
    rows = rows.assign(m3_year=rows["volume_m3"] / days * DAYS_PER_YEAR, period_days=days)
    return newest_first(rows, "period_end")


@intermediate
def latest_water(water_readings: pd.DataFrame, params: FeatureParams) -> pd.DataFrame:
    """The newest reading per query, if it ended within the recent window."""
    latest = water_readings.loc[water_readings["recency"] == 0]
    latest = latest.loc[days_before(latest, "period_end") <= params.water_recent_days]
    return latest.set_index(Q)


@intermediate
def water_registered_persons(latest_water: pd.DataFrame, stays: pd.DataFrame) -> pd.Series:
    """Average number of registered persons over the latest reading's period (person-years)."""
    periods = latest_water[["period_start", "period_end", "period_days"]].reset_index()
    joined = stays[[Q, "registered_from", "registered_until", REF]].merge(periods, on=Q)
    end = joined["registered_until"].fillna(joined[REF])
    overlap_end = np.minimum(end.to_numpy(), joined["period_end"].to_numpy())
    overlap_start = np.maximum(
        joined["registered_from"].to_numpy(), joined["period_start"].to_numpy()
    )
    overlap = pd.Series((overlap_end - overlap_start) / np.timedelta64(1, "D")).clip(lower=0)
    share = overlap / joined["period_days"].to_numpy()
    avg = share.groupby(joined[Q].to_numpy()).sum()
    out: pd.Series = avg.reindex(latest_water.index, fill_value=0.0)
    return out


@feature
def water_m3_year(latest_water: pd.DataFrame, n_queries: int) -> pd.Series:
    """Water use of the latest reading ended in the last {params.water_recent_days} days, per year
    (m3/year)."""
    return per_query(latest_water["m3_year"], n_queries)


@feature
def water_m3_per_registered_person(
    latest_water: pd.DataFrame, water_registered_persons: pd.Series, n_queries: int
) -> pd.Series:
    """Yearly water use per person registered during the reading's period (m3/person/year)."""
    ratio = safe_ratio(latest_water["m3_year"], water_registered_persons, 0.25)
    return per_query(ratio, n_queries)


@feature
def water_ratio_to_expected(
    water_m3_per_registered_person: pd.Series, params: FeatureParams
) -> pd.Series:
    """Water use per registered person divided by the expected
    {params.water_m3_per_person_year:g} m3/person/year (ratio)."""
    return water_m3_per_registered_person / params.water_m3_per_person_year


@feature
def water_use_without_registration(
    latest_water: pd.DataFrame,
    water_registered_persons: pd.Series,
    params: FeatureParams,
    n_queries: int,
) -> pd.Series:
    """1 when water for at least half a resident was used while nobody was registered (flag)."""
    used = latest_water["m3_year"] >= 0.5 * params.water_m3_per_person_year
    flag = (used & (water_registered_persons < 0.25)).astype("float64")
    return per_query(flag, n_queries)


@feature
def water_change_ratio(water_readings: pd.DataFrame, n_queries: int) -> pd.Series:
    """Yearly use in the latest reading over that in the reading before it (ratio)."""
    by_rank = water_readings.loc[water_readings["recency"] <= 1].pivot_table(
        index=Q, columns="recency", values="m3_year", aggfunc="first"
    )
    if not {0, 1} <= set(by_rank.columns):
        return per_query(pd.Series(dtype="float64"), n_queries)
    return per_query(safe_ratio(by_rank[0], by_rank[1], 1.0), n_queries)


@parameterize(water_missing_readings_24m={"days": 730})
def water_missing_readings(water_readings: pd.DataFrame, n_queries: int, days: int) -> pd.Series:
    """Yearly readings missing in the {days} days before the reference date (count, 0-2)."""
    recent = water_readings.loc[days_before(water_readings, "period_end") <= days]
    return (2.0 - count_per_query(recent, n_queries)).clip(lower=0)
