"""Dwelling features from BAG: size, purpose, age, tenure, building."""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.asof import REF
from stratum_ml.features.registry import feature, intermediate


@feature
def floor_area_m2(query_addresses: pd.DataFrame) -> pd.Series:
    """Usable floor area of the dwelling (m2; BAG gebruiksoppervlakte)."""
    return query_addresses["floor_area_m2"].astype("float64")


@feature
def use_purpose(query_addresses: pd.DataFrame) -> pd.Series:
    """BAG use purpose of the unit (category)."""
    return query_addresses["use_purpose"]


@feature
def tenure(query_addresses: pd.DataFrame) -> pd.Series:
    """Tenure of the dwelling (category: owner-occupied, social or private rent)."""
    return query_addresses["tenure"]


@feature
def building_age_years(query_addresses: pd.DataFrame) -> pd.Series:
    """Age of the building at the reference date (years)."""
    age = query_addresses[REF].dt.year - query_addresses["construction_year"]
    out: pd.Series = age.clip(lower=0).astype("float64")
    return out


@intermediate
def building_units(addresses: pd.DataFrame) -> pd.Series:
    """Number of BAG units per building, by ``building_id`` (a town-wide fact)."""
    sizes: pd.Series = addresses.groupby("building_id").size()
    return sizes


@feature
def units_in_building(query_addresses: pd.DataFrame, building_units: pd.Series) -> pd.Series:
    """Number of BAG units in the same building (count)."""
    return query_addresses["building_id"].map(building_units).astype("float64")
