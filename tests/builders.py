"""Small hand-made source tables whose feature values can be checked by hand."""

from __future__ import annotations

import pandas as pd

from stratum_ml.sources.contract import TABLES
from stratum_ml.sources.tables import SourceTables, normalise_table

A = [f"04790100000000{i:02d}" for i in range(6)]
B = ["0479100000000001", "0479100000000002"]


def tiny_frames() -> dict[str, pd.DataFrame]:
    """Raw frames of a six-address municipality (valid under the contract)."""
    ts = pd.to_datetime
    return {
        "addresses": pd.DataFrame(
            {
                "address_id": A,
                "building_id": [B[0]] * 3 + [B[1]] * 3,
                "postcode": "1501AB",
                "house_number": range(1, 7),
                "house_number_suffix": None,
                "district_code": "WK047901",
                "neighbourhood_code": "BU04790101",
                "floor_area_m2": [50, 60, 70, 80, 90, 100],
                "use_purpose": "woonfunctie",
                "construction_year": 1960,
                "tenure": ["private_rent"] * 3 + ["owner_occupied"] * 3,
                "x_rd": 115000.0,
                "y_rd": 495000.0,
            }
        ),
        "registrations": pd.DataFrame(
            {
                "person_id": ["Pa", "Pb", "Pc", "Pa", "Pd", "Pe"],
                "address_id": [A[0], A[0], A[1], A[1], A[2], A[0]],
                "registered_from": ts(
                    [
                        "2018-01-01",
                        "2020-01-01",
                        "2019-01-01",
                        "2021-01-01",
                        "2022-01-01",
                        "2024-06-01",
                    ]
                ),
                "registered_until": ts(["2020-12-31", None, None, None, "2024-08-01", None]),
                "birth_year": [1980, 1990, 2010, 1980, 1970, 2000],
                "surname_key": ["S1", "S2", "S3", "S1", "S4", "S5"],
            }
        ),
        "inspections": pd.DataFrame(
            {
                "inspection_id": ["I1", "I2"],
                "address_id": [A[0], A[1]],
                "inspected_at": ts(["2023-05-01", "2024-01-01"]),
                "reason": ["report", "random_sample"],
                "outcome": ["violation", "no_violation"],
                "violation_type": ["overcrowding", None],
            }
        ),
        "water_usage": pd.DataFrame(
            {
                "address_id": [A[0], A[0], A[1]],
                "period_start": ts(["2022-01-01", "2023-01-01", "2023-01-01"]),
                "period_end": ts(["2023-01-01", "2024-01-01", "2024-01-01"]),
                "volume_m3": [90.0, 200.0, 40.0],
            }
        ),
        "energy_usage": pd.DataFrame(
            {
                "address_id": [A[0], A[0]],
                "year": [2022, 2023],
                "electricity_kwh": [3000.0, 4500.0],
                "gas_m3": [1000.0, None],
            }
        ),
        "businesses": pd.DataFrame(
            {
                "business_id": ["000000000001", "000000000001"],
                "address_id": [A[2], A[4]],
                "registered_from": ts(["2020-01-01", "2023-01-01"]),
                "registered_until": ts(["2022-12-31", None]),
                "sbi_code": ["7820", "7820"],
            }
        ),
        "ownership": pd.DataFrame(
            {
                "address_id": [A[0], A[1], A[3]],
                "owner_id": ["O1", "O1", "O2"],
                "owner_type": ["company", "company", "housing_association"],
                "owned_from": ts(["2015-01-01", "2019-01-01", "2010-01-01"]),
                "owned_until": pd.NaT,
            }
        ),
        "reports": pd.DataFrame(
            {
                "report_id": ["R1", "R2"],
                "address_id": [A[0], A[0]],
                "reported_at": ts(["2024-03-01 10:00", "2024-12-01 12:00"]),
                "category": ["overcrowding", "nuisance"],
                "source": ["resident", "police"],
            }
        ),
    }


def tables_from_frames(frames: dict[str, pd.DataFrame]) -> SourceTables:
    """Normalised :class:`SourceTables` from raw frames (model tables only)."""
    return SourceTables(
        **{
            name: normalise_table(df, TABLES[name])
            for name, df in frames.items()
            if not TABLES[name].audit_only
        }
    )


def tiny_tables() -> SourceTables:
    """The six-address municipality as normalised source tables."""
    return tables_from_frames(tiny_frames())
