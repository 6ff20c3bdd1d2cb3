"""Registration (BRP) features: who is registered, and how fast they come and go."""

from __future__ import annotations

from types import FunctionType
from typing import cast

import pandas as pd

from stratum_ml.features.asof import REF, Q, asof_join, days_before, in_force, per_query
from stratum_ml.features.common import count_per_query, safe_ratio
from stratum_ml.features.registry import FeatureParams, feature, feature_variant, intermediate
from stratum_ml.sources.tables import SourceTables

THEME = "household"


@intermediate(sources=("registrations",))
def stays(keys: pd.DataFrame, tables: SourceTables) -> pd.DataFrame:
    """Every stay at the query's address that had begun by the reference date."""
    return asof_join(
        tables.registrations, keys, date_col="registered_from", end_col="registered_until"
    )


@intermediate()
def stays_now(stays: pd.DataFrame) -> pd.DataFrame:
    """Stays in force on the reference date (the registered household)."""
    return in_force(stays, "registered_until")


def _age(rows: pd.DataFrame) -> pd.Series:
    age: pd.Series = rows[REF].dt.year - rows["birth_year"]
    return age


@feature(theme=THEME, sources=("registrations",))
def registered_persons(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Persons registered at the address on the reference date (count)."""
    return count_per_query(stays_now, n_queries, "person_id")


@feature(theme=THEME, sources=("registrations",))
def registered_adults(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Registered persons aged 18 or over on the reference date (count)."""
    return count_per_query(stays_now.loc[_age(stays_now) >= 18], n_queries, "person_id")


@feature(theme=THEME, sources=("registrations",))
def registered_minors(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Registered persons under 18 on the reference date (count)."""
    return count_per_query(stays_now.loc[_age(stays_now) < 18], n_queries, "person_id")


@feature(theme=THEME, sources=("registrations",))
def mean_resident_age(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Mean age of the registered persons on the reference date (years)."""
    return per_query(_age(stays_now).groupby(stays_now[Q]).mean().astype("float64"), n_queries)


@feature(theme=THEME, sources=("addresses", "registrations"))
def m2_per_registered_person(floor_area_m2: pd.Series, registered_persons: pd.Series) -> pd.Series:
    """Floor area per registered person on the reference date (m2; NaN when nobody)."""
    return safe_ratio(floor_area_m2, registered_persons, 1)


@feature(theme=THEME, sources=("registrations",))
def distinct_surnames(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Distinct family names among the registered persons on the reference date (count)."""
    return count_per_query(stays_now, n_queries, "surname_key")


@feature(theme=THEME, sources=("registrations",))
def surnames_per_person(distinct_surnames: pd.Series, registered_persons: pd.Series) -> pd.Series:
    """Distinct family names per registered person on the reference date (ratio 0-1)."""
    return safe_ratio(distinct_surnames, registered_persons, 1)


def _moves_in(days: int) -> FunctionType:
    def moves(stays: pd.DataFrame, n_queries: int) -> pd.Series:
        recent = stays.loc[days_before(stays, "registered_from") <= days]
        return count_per_query(recent, n_queries)

    return cast(FunctionType, moves)


def _moves_out(days: int) -> FunctionType:
    def moves(stays: pd.DataFrame, n_queries: int) -> pd.Series:
        ended = stays.loc[stays["registered_until"].notna()]
        recent = ended.loc[days_before(ended, "registered_until") <= days]
        return count_per_query(recent, n_queries)

    return cast(FunctionType, moves)


for _days, _label in ((365, "12m"), (730, "24m")):
    feature_variant(
        _moves_in(_days),
        name=f"moves_in_{_label}",
        doc=f"Registrations that began at the address in the {_days} days before the "
        "reference date (count).",
        theme=THEME,
        sources=("registrations",),
    )
    feature_variant(
        _moves_out(_days),
        name=f"moves_out_{_label}",
        doc=f"Registrations at the address that ended in the {_days} days before the "
        "reference date (count).",
        theme=THEME,
        sources=("registrations",),
    )


@intermediate()
def stays_ended_24m(stays: pd.DataFrame) -> pd.DataFrame:
    """Stays that ended in the 730 days before the reference date, with their length in days."""
    ended = stays.loc[stays["registered_until"].notna()]
    ended = ended.loc[days_before(ended, "registered_until") <= 730]
    length = (ended["registered_until"] - ended["registered_from"]).dt.days
    return ended.assign(stay_days=length)


@feature(theme=THEME, sources=("registrations",))
def short_stay_share_24m(
    stays_ended_24m: pd.DataFrame, params: FeatureParams, n_queries: int
) -> pd.Series:
    """Share of the stays ended in the last 730 days that lasted under 180 days (0-1)."""
    short = (stays_ended_24m["stay_days"] < params.short_stay_days).astype("float64")
    return per_query(short.groupby(stays_ended_24m[Q]).mean(), n_queries)


@feature(theme=THEME, sources=("registrations",))
def median_stay_days_24m(stays_ended_24m: pd.DataFrame, n_queries: int) -> pd.Series:
    """Median length of the stays ended in the last 730 days (days)."""
    med = stays_ended_24m["stay_days"].groupby(stays_ended_24m[Q]).median()
    return per_query(med.astype("float64"), n_queries)


@feature(theme=THEME, sources=("registrations",))
def persons_registered_24m(stays: pd.DataFrame, n_queries: int) -> pd.Series:
    """Distinct persons registered at the address at any time in the last 730 days (count)."""
    until = stays["registered_until"]
    active = stays.loc[until.isna() | ((stays[REF] - until).dt.days <= 730)]
    return count_per_query(active, n_queries, "person_id")


@feature(theme=THEME, sources=("registrations",))
def days_since_last_move_in(stays: pd.DataFrame, n_queries: int) -> pd.Series:
    """Days since the most recent registration at the address began (days)."""
    days = days_before(stays, "registered_from").groupby(stays[Q]).min()
    return per_query(days.astype("float64"), n_queries)
