"""Registration (BRP) features: who is registered, and how fast they come and go."""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.asof import REF, Q, asof_join, days_before, in_force, per_query
from stratum_ml.features.common import count_per_query, safe_ratio
from stratum_ml.features.registry import FeatureParams, feature, intermediate, parameterize


@intermediate
def stays(keys: pd.DataFrame, registrations: pd.DataFrame) -> pd.DataFrame:
    """Every stay at the query's address that had begun by the reference date."""
    return asof_join(
        registrations,
        keys,
        date_col="registered_from",
        end_col="registered_until",
        columns=["person_id", "registered_from", "registered_until", "birth_year", "surname_key"],
    )


@intermediate
def stays_now(stays: pd.DataFrame) -> pd.DataFrame:
    """Stays in force on the reference date (the registered household)."""
    return in_force(stays, "registered_until")


def _age(rows: pd.DataFrame) -> pd.Series:
    age: pd.Series = rows[REF].dt.year - rows["birth_year"]
    return age


@feature
def registered_persons(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Persons registered at the address on the reference date (count)."""
    return count_per_query(stays_now, n_queries, "person_id")


@feature
def registered_adults(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Registered persons aged 18 or over on the reference date (count)."""
    return count_per_query(stays_now.loc[_age(stays_now) >= 18], n_queries, "person_id")


@feature
def registered_minors(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Registered persons under 18 on the reference date (count)."""
    return count_per_query(stays_now.loc[_age(stays_now) < 18], n_queries, "person_id")


@feature
def mean_resident_age(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Mean age of the registered persons on the reference date (years)."""
    return per_query(_age(stays_now).groupby(stays_now[Q]).mean().astype("float64"), n_queries)


@feature
def m2_per_registered_person(floor_area_m2: pd.Series, registered_persons: pd.Series) -> pd.Series:
    """Floor area per registered person on the reference date (m2; NaN when nobody)."""
    return safe_ratio(floor_area_m2, registered_persons, 1)


@feature
def distinct_surnames(stays_now: pd.DataFrame, n_queries: int) -> pd.Series:
    """Distinct family names among the registered persons on the reference date (count)."""
    return count_per_query(stays_now, n_queries, "surname_key")


@feature
def surnames_per_person(distinct_surnames: pd.Series, registered_persons: pd.Series) -> pd.Series:
    """Distinct family names per registered person on the reference date (ratio 0-1)."""
    return safe_ratio(distinct_surnames, registered_persons, 1)


@parameterize(
    moves_in_12m={"event": "began", "days": 365},
    moves_out_12m={"event": "ended", "days": 365},
    moves_in_24m={"event": "began", "days": 730},
    moves_out_24m={"event": "ended", "days": 730},
)
def moves(stays: pd.DataFrame, n_queries: int, event: str, days: int) -> pd.Series:
    """Registrations at the address that {event} in the {days} days before the reference date
    (count)."""
    column = {"began": "registered_from", "ended": "registered_until"}[event]
    return count_per_query(stays.loc[days_before(stays, column) <= days], n_queries)


@intermediate
def ended_stays(stays: pd.DataFrame) -> pd.DataFrame:
    """Stays that had ended before the reference date, with their length in days."""
    ended = stays.loc[stays["registered_until"].notna()]
    length = (ended["registered_until"] - ended["registered_from"]).dt.days
    return ended.assign(stay_days=length)


def _ended_within(ended_stays: pd.DataFrame, days: int) -> pd.DataFrame:
    return ended_stays.loc[days_before(ended_stays, "registered_until") <= days]


@parameterize(short_stay_share_24m={"days": 730})
def short_stay_share(
    ended_stays: pd.DataFrame, params: FeatureParams, n_queries: int, days: int
) -> pd.Series:
    """Share of the stays ended in the last {days} days that lasted under
    {params.short_stay_days} days (0-1)."""
    ended = _ended_within(ended_stays, days)
    short = (ended["stay_days"] < params.short_stay_days).astype("float64")
    return per_query(short.groupby(ended[Q]).mean(), n_queries)


@parameterize(median_stay_days_24m={"days": 730})
def median_stay_days(ended_stays: pd.DataFrame, n_queries: int, days: int) -> pd.Series:
    """Median length of the stays ended in the last {days} days (days)."""
    ended = _ended_within(ended_stays, days)
    med = ended["stay_days"].groupby(ended[Q]).median()
    return per_query(med.astype("float64"), n_queries)


@parameterize(persons_registered_24m={"days": 730})
def persons_registered(stays: pd.DataFrame, n_queries: int, days: int) -> pd.Series:
    """Distinct persons registered at the address at any time in the last {days} days (count)."""
    until = stays["registered_until"]
    active = stays.loc[until.isna() | ((stays[REF] - until).dt.days <= days)]
    return count_per_query(active, n_queries, "person_id")


@feature
def days_since_last_move_in(stays: pd.DataFrame, n_queries: int) -> pd.Series:
    """Days since the most recent registration at the address began (days)."""
    days = days_before(stays, "registered_from").groupby(stays[Q]).min()
    return per_query(days.astype("float64"), n_queries)
