"""Feature values on a hand-made municipality, checked by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from stratum_ml.features.asof import asof_join, count_before, make_queries, query_keys
from stratum_ml.features.build import build_feature_table, build_visit_features
from tests.builders import A, tables_from_frames, tiny_frames, tiny_tables


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return build_feature_table(tiny_tables(), dt.date(2025, 1, 1))


def test_one_row_per_address_in_catalogue_theme_order(table: pd.DataFrame) -> None:
    assert list(table.index) == A
    assert table.columns[0] == "floor_area_m2"
    assert table.columns[-1] == "network_component_size"
    assert isinstance(table["tenure"].dtype, pd.CategoricalDtype)


def test_household_counts_follow_stays_in_force(table: pd.DataFrame) -> None:
    # A0: Pa left 2020-12-31, Pb since 2020, Pe since 2024-06 -> 2 registered, 2 surnames
    assert table.loc[A[0], "registered_persons"] == 2
    assert table.loc[A[0], "distinct_surnames"] == 2
    assert table.loc[A[0], "m2_per_registered_person"] == 25
    assert table.loc[A[0], "moves_in_12m"] == 1
    # A1: Pc (born 2010) and Pa -> one adult, one minor
    assert table.loc[A[1], "registered_adults"] == 1
    assert table.loc[A[1], "registered_minors"] == 1
    # A2: Pd stayed 2022-01-01 .. 2024-08-01 (943 days), nobody now
    assert table.loc[A[2], "registered_persons"] == 0
    assert table.loc[A[2], "median_stay_days_24m"] == 943
    assert np.isnan(table.loc[A[2], "m2_per_registered_person"])


def test_water_per_registered_person_uses_the_reading_period(table: pd.DataFrame) -> None:
    # 2023 reading of A0: 200 m3 while only Pb was registered all year
    assert table.loc[A[0], "water_m3_per_registered_person"] == pytest.approx(200 * 365.25 / 365)
    assert table.loc[A[0], "water_ratio_to_expected"] == pytest.approx(200 * 365.25 / 365 / 45)
    assert table.loc[A[0], "water_change_ratio"] == pytest.approx(200 / 90, rel=1e-3)
    assert table.loc[A[2], "water_missing_readings_24m"] == 2


def test_optional_source_missing_means_absent_not_zero() -> None:
    frames = tiny_frames()
    del frames["water_usage"], frames["energy_usage"]
    out = build_feature_table(tables_from_frames(frames), dt.date(2025, 1, 1))
    assert "water_m3_year" not in out.columns
    assert "electricity_kwh_year" not in out.columns
    assert out.attrs["absent_features"]["water_ratio_to_expected"] == ["water_usage"]
    assert "registered_persons" in out.columns


def test_visit_features_do_not_see_the_visit_itself() -> None:
    visits = build_visit_features(tiny_tables())
    # I1 is the first visit to A0: no earlier visits, and its own violation is not counted
    assert visits.loc["I1", "previous_visits"] == 0
    assert visits.loc["I1", "previous_violations"] == 0
    # I2 (A1, 2024-01-01) sees A0's violation of 2023-05-01 through shared resident Pa
    assert visits.loc["I2", "linked_violations"] == 1


def test_network_links_and_components(table: pd.DataFrame) -> None:
    assert table.loc[A[0], "linked_by_residents"] == 1  # Pa lived at A0 and A1
    assert table.loc[A[0], "linked_by_owner"] == 1  # company O1 owns A0 and A1
    assert table.loc[A[3], "linked_by_owner"] == 0  # housing associations do not link
    assert table.loc[A[2], "linked_by_business"] == 1  # business 1 at A2, later A4
    assert table.loc[A[0], "network_component_size"] == 2
    assert table.loc[A[5], "network_component_size"] == 1


def test_asof_join_is_strict_and_censors_end_dates() -> None:
    regs = tiny_tables().registrations
    keys = query_keys(make_queries([A[2]], dt.date(2022, 1, 1)))
    assert len(asof_join(regs, keys, date_col="registered_from")) == 0  # starts that day
    keys = query_keys(make_queries([A[2]], dt.date(2024, 8, 1)))
    rows = asof_join(regs, keys, date_col="registered_from", end_col="registered_until")
    assert rows["registered_until"].isna().all()  # ends that day: not yet known


def test_count_before_counts_strictly_earlier_rows_per_key() -> None:
    table = pd.DataFrame(
        {
            "k": ["a", "a", "a", "b"],
            "d": pd.to_datetime(["2020-01-01", "2021-01-01", None, "2019-01-01"]),
        }
    )
    out = count_before(
        table,
        "k",
        "d",
        np.array(["a", "a", "b", "z"]),
        pd.to_datetime(["2021-01-01", "2021-01-02", "2030-01-01", "2030-01-01"]),
    )
    assert out.tolist() == [1, 2, 1, 0]
