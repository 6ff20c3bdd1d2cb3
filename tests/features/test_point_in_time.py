"""The as-of rule, as a property: rows dated on or after the reference date change nothing.

Each example draws a set of *future* facts (new stays, the ending of stays in force,
meter readings, reports, visits and their outcomes, sales, businesses, energy years), all
dated on or after the reference date, adds them to the sources, and checks that every
feature of every query is unchanged. The ending of a stay after a visit is exactly the
after-effect (ambtshalve uitschrijving) a leaky pipeline would learn from.
"""

from __future__ import annotations

import datetime as dt
import functools

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_ml.features.asof import make_queries
from stratum_ml.features.build import build_features
from stratum_ml.features.partitioned import build_features_partitioned
from tests.builders import A, tables_from_frames, tiny_frames

REFS = [dt.date(2023, 5, 1), dt.date(2024, 1, 1), dt.date(2024, 8, 1), dt.date(2025, 1, 1)]
days = st.one_of(st.just(0), st.integers(min_value=0, max_value=900))  # the day itself often
address = st.sampled_from(A)


@st.composite
def future_facts(draw: st.DrawFn, ref: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Rows dated on or after ``ref`` for every table, and ends of things in force at ``ref``."""
    frames = {k: v.copy() for k, v in tiny_frames().items()}
    day = lambda: ref + pd.Timedelta(days=draw(days))  # noqa: E731

    regs = frames["registrations"]
    in_force = (regs["registered_from"] < ref) & (
        regs["registered_until"].isna() | (regs["registered_until"] >= ref)
    )
    for i in regs.index[in_force]:
        if draw(st.booleans()):  # the stay ends on or after the reference date
            regs.loc[i, "registered_until"] = day()
    new_regs = [
        {
            "person_id": draw(st.sampled_from(["Pa", "Pb", "Pn1", "Pn2"])),
            "address_id": draw(address),
            "registered_from": (start := day()),
            "registered_until": draw(st.sampled_from([pd.NaT, start + pd.Timedelta(days=30)])),
            "birth_year": 1990,
            "surname_key": draw(st.sampled_from(["S1", "S9"])),
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    frames["registrations"] = pd.concat([regs, pd.DataFrame(new_regs)], ignore_index=True)

    def add(table: str, rows: list[dict[str, object]]) -> None:
        frames[table] = pd.concat([frames[table], pd.DataFrame(rows)], ignore_index=True)

    n = st.integers(0, 3)
    add(
        "water_usage",
        [
            {
                "address_id": draw(address),
                "period_start": (end := day()) - pd.Timedelta(days=365),
                "period_end": end,
                "volume_m3": float(draw(st.integers(0, 500))),
            }
            for _ in range(draw(n))
        ],
    )
    add(
        "reports",
        [
            {
                "report_id": f"RF{i}",
                "address_id": draw(address),
                "reported_at": day() + pd.Timedelta(hours=draw(st.integers(0, 23))),
                "category": draw(st.sampled_from(["overcrowding", "nuisance", "exploitation"])),
                "source": "municipality",
            }
            for i in range(draw(n))
        ],
    )
    add(
        "inspections",
        [
            {
                "inspection_id": f"IF{i}",
                "address_id": draw(address),
                "inspected_at": day(),
                "reason": "report",
                "outcome": (o := draw(st.sampled_from(["violation", "no_violation"]))),
                "violation_type": "address_fraud" if o == "violation" else None,
            }
            for i in range(draw(n))
        ],
    )
    own = frames["ownership"]
    for i in own.index[own["owned_until"].isna() & (own["owned_from"] < ref)]:
        if draw(st.booleans()):  # sold on or after the reference date
            own.loc[i, "owned_until"] = day()
    add(
        "ownership",
        [
            {
                "address_id": draw(address),
                "owner_id": draw(st.sampled_from(["O1", "O2", "O9"])),
                "owner_type": "company",
                "owned_from": day(),
                "owned_until": pd.NaT,
            }
            for _ in range(draw(n))
        ],
    )
    bus = frames["businesses"]
    for i in bus.index[bus["registered_until"].isna() & (bus["registered_from"] < ref)]:
        if draw(st.booleans()):
            bus.loc[i, "registered_until"] = day()
    add(
        "businesses",
        [
            {
                "business_id": draw(st.sampled_from(["000000000001", "000000000777"])),
                "address_id": draw(address),
                "registered_from": day(),
                "registered_until": pd.NaT,
                "sbi_code": "7820",
            }
            for _ in range(draw(n))
        ],
    )
    add(
        "energy_usage",
        [
            {
                "address_id": draw(address),
                "year": ref.year + draw(st.integers(0, 2)),
                "electricity_kwh": 9999.0,
                "gas_m3": 9999.0,
            }
            for _ in range(draw(n))
        ],
    )
    return frames


@functools.cache
def _baseline(ref: pd.Timestamp) -> pd.DataFrame:
    return build_features(tables_from_frames(tiny_frames()), _queries(ref))


def _queries(ref: pd.Timestamp) -> pd.DataFrame:
    """Every address as of ``ref``, plus queries as of earlier dates (as in training)."""
    scoring = make_queries(A, ref, index=pd.Index([f"s{i}" for i in range(len(A))]))
    earlier = make_queries(
        [A[0], A[1], A[4]],
        [ref - pd.Timedelta(days=d) for d in (1, 200, 700)],
        index=pd.Index(["t0", "t1", "t2"]),
    )
    return pd.concat([scoring, earlier])


@pytest.mark.parametrize("ref_date", REFS, ids=str)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_rows_on_or_after_reference_date_change_no_feature(
    ref_date: dt.date, data: st.DataObject
) -> None:
    ref = pd.Timestamp(ref_date)
    queries = _queries(ref)
    after = build_features(tables_from_frames(data.draw(future_facts(ref))), queries)
    pd.testing.assert_frame_equal(_baseline(ref), after)


def test_the_property_can_fail() -> None:
    """The same comparison does see a row dated the day *before* the reference date."""
    ref = pd.Timestamp("2025-01-01")
    frames = tiny_frames()
    queries = _queries(ref)
    before = build_features(tables_from_frames(frames), queries)
    extra = pd.DataFrame(
        [
            {
                "report_id": "RX",
                "address_id": A[3],
                "reported_at": ref - pd.Timedelta(hours=1),
                "category": "overcrowding",
                "source": "resident",
            }
        ]
    )
    frames["reports"] = pd.concat([frames["reports"], extra], ignore_index=True)
    after = build_features(tables_from_frames(frames), queries)
    assert after.loc["s3", "reports_all_90d"] == before.loc["s3", "reports_all_90d"] + 1


@functools.cache
def _partitioned_baseline(ref: pd.Timestamp) -> pd.DataFrame:
    return build_features_partitioned(
        tables_from_frames(tiny_frames()), _queries(ref), n_partitions=3
    )


@pytest.mark.parametrize("ref_date", REFS, ids=str)
# fewer examples than the in-memory property: the same rules, run three partitions apiece
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_partitioned_rows_on_or_after_reference_date_change_no_feature(
    ref_date: dt.date, data: st.DataObject
) -> None:
    """The same property on the partitioned path (3 partitions of six addresses)."""
    ref = pd.Timestamp(ref_date)
    tables = tables_from_frames(data.draw(future_facts(ref)))
    after = build_features_partitioned(tables, _queries(ref), n_partitions=3)
    pd.testing.assert_frame_equal(_partitioned_baseline(ref), after)
    pd.testing.assert_frame_equal(_baseline(ref), after, check_exact=False, rtol=1e-9)


def test_the_property_can_fail_on_the_partitioned_path() -> None:
    ref = pd.Timestamp("2025-01-01")
    frames = tiny_frames()
    queries = _queries(ref)
    before = build_features_partitioned(tables_from_frames(frames), queries, n_partitions=3)
    extra = pd.DataFrame(
        [
            {
                "report_id": "RX",
                "address_id": A[3],
                "reported_at": ref - pd.Timedelta(hours=1),
                "category": "overcrowding",
                "source": "resident",
            }
        ]
    )
    frames["reports"] = pd.concat([frames["reports"], extra], ignore_index=True)
    after = build_features_partitioned(tables_from_frames(frames), queries, n_partitions=3)
    assert after.loc["s3", "reports_all_90d"] == before.loc["s3", "reports_all_90d"] + 1
