"""Handelsregister features: businesses at the address and in its building."""

from __future__ import annotations

import pandas as pd

from stratum_ml.features.asof import REF, Q, asof_join, in_force, match_rows
from stratum_ml.features.common import count_per_query
from stratum_ml.features.registry import FeatureParams, feature, intermediate

#: the columns of an establishment that the features read
_BUSINESS_COLUMNS = ["business_id", "registered_from", "registered_until", "sbi_code"]


def is_employment_agency(sbi_code: pd.Series, params: FeatureParams) -> pd.Series:
    """Whether an SBI code is one of ``params.employment_agency_sbi`` or a sub-code of one."""
    return sbi_code.astype("str").str.startswith(params.employment_agency_sbi)


@intermediate
def business_rows(keys: pd.DataFrame, businesses: pd.DataFrame) -> pd.DataFrame:
    """Establishments registered at the query's address before the reference date."""
    return asof_join(
        businesses,
        keys,
        date_col="registered_from",
        end_col="registered_until",
        columns=_BUSINESS_COLUMNS,
    )


@intermediate
def building_business_rows(
    query_addresses: pd.DataFrame, businesses: pd.DataFrame, addresses: pd.DataFrame
) -> pd.DataFrame:
    """Establishments in force in the query address's building on the reference date."""
    located_rows, address_rows = match_rows(businesses["address_id"], addresses["address_id"])
    located = businesses[_BUSINESS_COLUMNS].take(located_rows).reset_index(drop=True)
    located["building_id"] = addresses["building_id"].array.take(address_rows)
    building_keys = pd.DataFrame(
        {
            "building_id": query_addresses["building_id"],
            Q: query_addresses.index,
            REF: query_addresses[REF],
        }
    )
    rows = asof_join(
        located,
        building_keys,
        date_col="registered_from",
        end_col="registered_until",
        on="building_id",
        columns=_BUSINESS_COLUMNS,
    )
    return in_force(rows, "registered_until")


@feature
def businesses_at_address(business_rows: pd.DataFrame, n_queries: int) -> pd.Series:
    """Establishments registered at the address on the reference date (count)."""
    return count_per_query(in_force(business_rows, "registered_until"), n_queries, "business_id")


@feature
def employment_agencies_at_address(
    business_rows: pd.DataFrame, params: FeatureParams, n_queries: int
) -> pd.Series:
    """Employment agencies (SBI {params.employment_agency_sbi}) registered at the address on
    the reference date (count)."""
    now = in_force(business_rows, "registered_until")
    agencies = now.loc[is_employment_agency(now["sbi_code"], params)]
    return count_per_query(agencies, n_queries, "business_id")


@feature
def businesses_in_building(building_business_rows: pd.DataFrame, n_queries: int) -> pd.Series:
    """Establishments registered in the same building on the reference date (count)."""
    return count_per_query(building_business_rows, n_queries, "business_id")


@feature
def employment_agencies_in_building(
    building_business_rows: pd.DataFrame, params: FeatureParams, n_queries: int
) -> pd.Series:
    """Employment agencies (SBI {params.employment_agency_sbi}) in the same building on the
    reference date (count)."""
    rows = building_business_rows
    agencies = rows.loc[is_employment_agency(rows["sbi_code"], params)]
    return count_per_query(agencies, n_queries, "business_id")
