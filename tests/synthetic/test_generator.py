"""The synthetic municipality: valid, deterministic, and with the planted signals and biases.

Two generated municipalities are shared by the tests: a small one (2,000
addresses) for files and round trips, and a larger one (30,000 addresses, with
more visits than the default so that hit rates are measurable) for the
statistical checks. Every statistical threshold is far from what the generator
produces, yet would fail if the mechanism it checks were removed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratum_ml.sources import (
    MODEL_TABLES,
    TABLES,
    extract_date,
    load_audit_tables,
    load_sources,
    read_extract_date,
    validate_source_dir,
    validate_tables,
)
from stratum_ml.sources.contract import EXTRACT_DECLARATION
from stratum_ml.synthetic import (
    MECHANISMS,
    TRUTH_COLUMNS,
    GeneratorConfig,
    Municipality,
    generate_municipality,
    generate_tables,
    read_truth,
    truth_at,
)

SMALL = GeneratorConfig(n_addresses=2_000, seed=11)
BIG = GeneratorConfig(n_addresses=30_000, seed=5, visit_rate=0.15, random_sample_share=0.3)


@pytest.fixture(scope="module")
def small() -> Municipality:
    return generate_tables(SMALL)


@pytest.fixture(scope="module")
def big() -> Municipality:
    return generate_tables(BIG)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, str]]:
    """The small municipality written as CSV and as Parquet: (folder, truth file, summary)."""
    out = {}
    for fmt in ("csv", "parquet"):
        base = tmp_path_factory.mktemp(fmt)
        src, truth = base / "sources", base / f"truth.{fmt}"
        summary = generate_municipality(SMALL, out_dir=src, truth_file=truth, fmt=fmt)
        out[fmt] = (src, truth, summary)
    return out


def _all_tables(m: Municipality) -> dict[str, pd.DataFrame]:
    return {**dict(m.sources.items()), "audit_attributes": m.audit.audit_attributes}


# ---------------------------------------------------------------------------- determinism


def test_same_seed_same_municipality(small: Municipality) -> None:
    again = generate_tables(SMALL)
    for name, df in _all_tables(small).items():
        pd.testing.assert_frame_equal(df, _all_tables(again)[name], obj=name)
    pd.testing.assert_frame_equal(small.truth, again.truth)


def test_other_seed_other_municipality(small: Municipality) -> None:
    other = generate_tables(SMALL.model_copy(update={"seed": SMALL.seed + 1}))
    assert not small.sources.registrations.equals(other.sources.registrations)
    assert not small.sources.addresses["floor_area_m2"].equals(
        other.sources.addresses["floor_area_m2"]
    )
    assert set(small.sources.registrations["person_id"]).isdisjoint(
        other.sources.registrations["person_id"]
    )


def test_files_are_byte_identical_for_one_seed(tmp_path: Path) -> None:
    cfg = GeneratorConfig(n_addresses=600, seed=3)
    paths = []
    for k in range(2):
        src, truth = tmp_path / f"src{k}", tmp_path / f"truth{k}.parquet"
        generate_municipality(cfg, out_dir=src, truth_file=truth, fmt="parquet")
        paths.append((src, truth))
    (a, ta), (b, tb) = paths
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert ta.read_bytes() == tb.read_bytes()


# ---------------------------------------------------------------------------- files


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_folder_is_valid(written: dict[str, tuple[Path, Path, str]], fmt: str) -> None:
    src, truth, summary = written[fmt]
    tables = [f"{t}.{fmt}" for t in TABLES]
    assert sorted(p.name for p in src.iterdir()) == sorted([*tables, EXTRACT_DECLARATION.file])
    report = validate_source_dir(src)
    assert report.ok, report.summary()
    assert report.extract is not None and report.extract.declared
    assert report.extract.date == SMALL.extract_date
    assert not report.warnings, report.summary()
    # no temporary folder left next to the result
    assert sorted(p.name for p in src.parent.iterdir()) == sorted(["sources", truth.name])
    for word in (*MECHANISMS, *TABLES):
        assert word in summary


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_equals_in_memory(
    written: dict[str, tuple[Path, Path, str]], small: Municipality, fmt: str
) -> None:
    src, truth_file, _ = written[fmt]
    loaded = load_sources(src)
    for name in MODEL_TABLES:
        pd.testing.assert_frame_equal(loaded.get(name), small.sources.get(name), obj=name)
    assert loaded.declared_extract_date == small.sources.declared_extract_date == SMALL.extract_date
    assert extract_date(loaded) == extract_date(small.sources) == read_extract_date(src)
    audit = load_audit_tables(src)
    assert audit is not None
    pd.testing.assert_frame_equal(audit.audit_attributes, small.audit.audit_attributes)
    raw = pd.read_csv(truth_file) if fmt == "csv" else pd.read_parquet(truth_file)
    assert tuple(raw.columns) == TRUTH_COLUMNS
    pd.testing.assert_frame_equal(read_truth(truth_file), small.truth)
    assert small.truth["end_date"].isna().any() and small.truth["end_date"].notna().any()


def test_refuses_truth_file_inside_source_folder(tmp_path: Path) -> None:
    src = tmp_path / "sources"
    with pytest.raises(ValueError, match="inside the source folder"):
        generate_municipality(SMALL, out_dir=src, truth_file=src / "truth.parquet", fmt="csv")
    with pytest.raises(ValueError, match="inside the source folder"):
        generate_municipality(SMALL, out_dir=src, truth_file=src / "deep" / "t.csv", fmt="csv")
    assert list(tmp_path.iterdir()) == []


def test_refuses_non_empty_source_folder(tmp_path: Path) -> None:
    src = tmp_path / "sources"
    src.mkdir()
    (src / "addresses.csv").write_text("keep me")
    with pytest.raises(FileExistsError, match=str(src)):
        generate_municipality(SMALL, out_dir=src, truth_file=tmp_path / "t.parquet", fmt="csv")
    assert [p.name for p in src.iterdir()] == ["addresses.csv"]
    assert (src / "addresses.csv").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources"]


def test_empty_source_folder_is_used(tmp_path: Path) -> None:
    src = tmp_path / "sources"
    src.mkdir()
    generate_municipality(
        GeneratorConfig(n_addresses=50, seed=1),
        out_dir=src,
        truth_file=tmp_path / "t.csv",
        fmt="csv",
    )
    assert (src / "addresses.csv").exists()


def test_several_chunks_make_one_valid_municipality() -> None:
    m = generate_tables(GeneratorConfig(n_addresses=3_000, seed=2, chunk_size=1_000))
    report = validate_tables(_all_tables(m))
    assert report.ok, report.summary()
    a = m.sources.addresses
    assert a["address_id"].is_unique and len(a) == 3_000
    assert m.sources.reports["report_id"].is_unique
    assert m.sources.inspections["inspection_id"].is_unique
    assert m.sources.businesses["business_id"].is_unique
    assert a["neighbourhood_code"].nunique() >= 6


# ---------------------------------------------------------------------------- contract


def test_nothing_dated_on_or_after_the_extract(big: Municipality) -> None:
    extract = pd.Timestamp(BIG.extract_date)
    for name, df in _all_tables(big).items():
        for col in TABLES[name].columns:
            if col.kind in ("date", "timestamp"):
                assert (df[col.name].dropna() < extract).all(), f"{name}.{col.name}"
    assert (big.sources.energy_usage["year"] < BIG.extract_date.year).all()
    assert (big.truth["start_date"] < extract).all()
    assert (big.truth["end_date"].dropna() < extract).all()
    # the declaration the generator writes agrees with the data (else this raises)
    declared = extract_date(big.sources)
    assert declared.declared and declared.date == BIG.extract_date
    assert declared.latest is not None and declared.latest.date < BIG.extract_date


def test_identifiers_and_codes(big: Municipality) -> None:
    a, r = big.sources.addresses, big.sources.registrations
    assert a["address_id"].str.fullmatch(r"0479(01)[0-9]{10}").all()
    assert a["building_id"].str.fullmatch(r"0479(10)[0-9]{10}").all()
    for col in ("person_id", "surname_key"):
        assert r[col].str.fullmatch(r"[PS][0-9a-f]{12}").all()
    assert big.sources.ownership["owner_id"].str.fullmatch(r"O[0-9a-f]{12}").all()
    assert big.sources.reports["report_id"].str.fullmatch(r"R[0-9]{9}").all()
    assert big.sources.inspections["inspection_id"].str.fullmatch(r"I[0-9]{9}").all()
    # hierarchy: buildings within one neighbourhood, neighbourhoods within their district
    assert (a.groupby("building_id")["neighbourhood_code"].nunique() == 1).all()
    assert (a["neighbourhood_code"].str[2:8] == a["district_code"].str[2:8]).all()
    per_nbh = a.groupby("neighbourhood_code").size()
    assert 100 < per_nbh.mean() < 1000
    assert a["x_rd"].between(90_000, 140_000).mean() > 0.99
    assert a["y_rd"].between(470_000, 520_000).mean() > 0.99
    # persons recur at several addresses (moves within the municipality)
    assert (r.groupby("person_id")["address_id"].nunique() >= 2).mean() > 0.1
    # every person in the audit table is registered, once
    audit = big.audit.audit_attributes
    assert audit["person_id"].is_unique
    assert set(audit["person_id"]) == set(r["person_id"])


def test_neighbourhoods_differ(big: Municipality) -> None:
    a = big.sources.addresses
    dw = a.loc[a["use_purpose"] == "woonfunctie"]
    social = dw.groupby("neighbourhood_code")["tenure"].apply(lambda t: (t == "social_rent").mean())
    assert social.quantile(0.9) - social.quantile(0.1) > 0.3
    assert (a["use_purpose"] != "woonfunctie").mean() > 0.05
    out = _outside_europe_share(big, pd.Timestamp("2024-01-01"))
    assert out.quantile(0.9) - out.quantile(0.1) > 0.2


# ---------------------------------------------------------------------------- truth_at


def test_truth_at() -> None:
    ts = pd.to_datetime
    truth = pd.DataFrame(
        {
            "address_id": ["A", "A", "B", "C"],
            "mechanism": ["address_fraud", "overcrowding", "exploitation", "overcrowding"],
            "start_date": ts(["2020-01-01", "2020-03-01", "2021-01-01", "2022-01-01"]),
            "end_date": ts(["2020-06-01", "2020-04-01", None, "2022-02-01"]),
        }
    )
    ids = ["A", "A", "A", "A", "B", "B", "C", "Z"]
    dates = ts(
        [
            "2019-12-31",
            "2020-01-01",
            "2020-05-31",
            "2020-06-01",
            "2020-12-31",
            "2030-01-01",
            "2022-02-01",
            "2021-01-01",
        ]
    )
    expect = [False, True, True, False, False, True, False, False]
    assert truth_at(truth, ids, dates).tolist() == expect
    assert truth_at(truth, ["A", "A"], dates[2:4], mechanism="overcrowding").tolist() == [False] * 2
    assert truth_at(truth, ["A", "C"], dt.date(2020, 3, 15)).tolist() == [True, False]
    assert truth_at(truth, [], dt.date(2020, 3, 15)).tolist() == []
    with pytest.raises(ValueError, match="unknown mechanism"):
        truth_at(truth, ["A"], dt.date(2020, 3, 15), mechanism="burglary")


# ---------------------------------------------------------------------------- planted signals


def _registered_at(r: pd.DataFrame, keys: pd.DataFrame, when: str) -> pd.Series:
    """Registered persons at ``keys.address_id`` on ``keys[when]`` (one count per key row)."""
    j = (
        keys[["address_id", when]]
        .reset_index()
        .merge(r[["address_id", "registered_from", "registered_until"]], on="address_id")
    )
    on = (j["registered_from"] <= j[when]) & (
        j["registered_until"].isna() | (j["registered_until"] > j[when])
    )
    return on.groupby(j["index"]).sum().reindex(keys.index, fill_value=0)


def _outside_europe_share(m: Municipality, when: pd.Timestamp) -> pd.Series:
    r = m.sources.registrations
    now = r.loc[
        (r["registered_from"] <= when)
        & (r["registered_until"].isna() | (r["registered_until"] > when))
    ]
    group = now["person_id"].map(
        m.audit.audit_attributes.set_index("person_id")["birth_country_group"]
    )
    nbh = m.sources.addresses.set_index("address_id")["neighbourhood_code"]
    return (group == "outside_europe").groupby(now["address_id"].map(nbh)).mean()


def test_water_per_registered_person_shows_the_mechanisms(big: Municipality) -> None:
    s = big.sources
    w = s.water_usage
    w = w.assign(mid=w["period_start"] + (w["period_end"] - w["period_start"]) / 2)
    dwellings = s.addresses.loc[s.addresses["use_purpose"] == "woonfunctie", "address_id"]
    w = w.loc[w["address_id"].isin(dwellings)]
    w = w.assign(registered=_registered_at(s.registrations, w, "mid"))
    w = w.loc[w["registered"] > 0]
    years = (w["period_end"] - w["period_start"]).dt.days / 365.25
    per_person = w["volume_m3"] / years / w["registered"]
    clean = per_person[~w["address_id"].isin(big.truth["address_id"])].mean()
    assert 30 < clean < 70
    during = {
        m: per_person[truth_at(big.truth, w["address_id"], w["mid"], mechanism=m)]
        for m in MECHANISMS
    }
    assert all(len(v) > 100 for v in during.values())
    assert during["illegal_room_rental"].mean() > 1.4 * clean
    assert during["overcrowding"].mean() > 1.2 * clean
    assert during["exploitation"].mean() > 1.4 * clean
    assert during["address_fraud"].mean() < 0.7 * clean
    # noisy, not separable: plenty of clean readings beyond the room-rental median
    assert (
        per_person[per_person.index.isin(w.index[~w["address_id"].isin(big.truth["address_id"])])]
        > during["illegal_room_rental"].median()
    ).sum() > 100


def test_room_rental_shows_in_the_register(big: Municipality) -> None:
    r = big.sources.registrations
    when = pd.Timestamp("2025-01-01")
    dwellings = big.sources.addresses.loc[
        big.sources.addresses["use_purpose"] == "woonfunctie", "address_id"
    ]
    recent = r.loc[
        (r["registered_from"] > when - pd.Timedelta(days=730))
        & (r["registered_from"] <= when)
        & ((r["registered_until"] - r["registered_from"]).dt.days < 365)
    ]
    short = recent.groupby("address_id").size().reindex(dwellings, fill_value=0)
    room = truth_at(big.truth, short.index, when, mechanism="illegal_room_rental")
    exploit = truth_at(big.truth, short.index, when, mechanism="exploitation")
    clean = ~truth_at(big.truth, short.index, when)
    assert short[room].mean() > 5 * short[clean].mean()
    assert short[exploit].mean() > 10 * short[clean].mean()
    assert (short[clean] >= 5).sum() > 50  # legal shared housing: churn is not proof


def test_exploitation_shares_an_owner_with_an_employment_agency(big: Municipality) -> None:
    s = big.sources
    ex = big.truth.loc[big.truth["mechanism"] == "exploitation"]
    assert len(ex) > 50
    own = ex.merge(s.ownership, on="address_id")
    own = own.loc[
        (own["owned_from"] <= own["start_date"])
        & (own["owned_until"].isna() | (own["owned_until"] > own["start_date"]))
    ]
    assert len(own) == len(ex)  # exactly one owner at the start of each episode
    assert own["owner_type"].isin(["company", "natural_person"]).all()
    holdings = s.ownership.groupby("owner_id")["address_id"].agg(set)
    assert (own["owner_id"].map(holdings.map(len)) >= 3).all()
    # exploiting owners use several dwellings at once
    assert own.groupby("owner_id").size().mean() > 2
    agencies = set(s.businesses.loc[s.businesses["sbi_code"].str.startswith("78"), "address_id"])
    linked = own["owner_id"].map(lambda o: bool(holdings[o] & agencies))
    assert linked.mean() > 0.95
    others = holdings.loc[holdings.map(len) >= 3].drop(own["owner_id"].unique())
    assert others.map(lambda a: bool(a & agencies)).mean() < 0.3
    # workers move between the dwellings of one owner
    r = s.registrations.loc[s.registrations["address_id"].isin(ex["address_id"])]
    assert (r.groupby("person_id")["address_id"].nunique() >= 2).sum() > 50


def test_visits_random_sample_is_unbiased_and_reports_hit_more(big: Municipality) -> None:
    ins = big.sources.inspections
    hit = pd.Series(truth_at(big.truth, ins["address_id"], ins["inspected_at"]), index=ins.index)
    rate = hit.groupby(ins["reason"], observed=True).mean()
    n = ins["reason"].value_counts()
    assert n["random_sample"] > 1000 and n["report"] > 2000 and n["project"] > 300
    # prevalence among dwellings on the random visits' dates
    dwellings = big.sources.addresses.loc[
        big.sources.addresses["use_purpose"] == "woonfunctie", "address_id"
    ].to_numpy()
    rng = np.random.default_rng(0)
    days = ins.loc[ins["reason"] == "random_sample", "inspected_at"].to_numpy()
    probe = truth_at(big.truth, rng.choice(dwellings, 20_000), rng.choice(days, 20_000))
    prevalence = probe.mean()
    assert 0.01 < prevalence < 0.06
    assert 0.6 * prevalence < rate["random_sample"] < 1.6 * prevalence
    assert rate["report"] > 4 * rate["random_sample"]
    # recorded outcomes follow the truth with imperfect detection
    found = ins["outcome"] == "violation"
    assert 0.7 < found[hit].mean() < 0.95
    assert 0.01 < found[~hit].mean() < 0.06
    assert ins.loc[~found, "violation_type"].isna().all()
    assert ins.loc[found, "violation_type"].notna().all()


def test_report_visits_over_represent_outside_europe_neighbourhoods(big: Municipality) -> None:
    share = _outside_europe_share(big, pd.Timestamp("2024-01-01"))
    high = share.index[share >= share.quantile(2 / 3)]
    a = big.sources.addresses.set_index("address_id")
    dwellings_high = (
        a.loc[a["use_purpose"] == "woonfunctie", "neighbourhood_code"].isin(high).mean()
    )
    ins = big.sources.inspections
    in_high = ins["address_id"].map(a["neighbourhood_code"]).isin(high)
    by_reason = in_high.groupby(ins["reason"], observed=True).mean()
    assert by_reason["report"] > 1.25 * dwellings_high
    assert abs(by_reason["random_sample"] - dwellings_high) < 0.08
    # ... although violations there are not nearly that much more common
    when = pd.Timestamp("2024-06-01")
    dw = a.loc[a["use_purpose"] == "woonfunctie"]
    truth = pd.Series(truth_at(big.truth, dw.index, when), index=dw.index)
    share_of_violations_high = truth[dw["neighbourhood_code"].isin(high)].sum() / truth.sum()
    assert by_reason["report"] > share_of_violations_high + 0.05


def test_visits_change_what_follows(big: Municipality) -> None:
    s = big.sources
    ins = s.inspections
    truth = big.truth
    fraud = ins.loc[
        (ins["violation_type"] == "address_fraud")
        & truth_at(truth, ins["address_id"], ins["inspected_at"], "address_fraud")
    ]
    assert len(fraud) > 30
    # the episode ends within two months of the visit ...
    ep = fraud.merge(truth.loc[truth["mechanism"] == "address_fraud"], on="address_id")
    ep = ep.loc[
        (ep["start_date"] <= ep["inspected_at"])
        & (ep["end_date"].isna() | (ep["end_date"] > ep["inspected_at"]))
    ]
    assert len(ep) == len(fraud)
    gap = (ep["end_date"] - ep["inspected_at"]).dt.days
    late = ep["inspected_at"] + pd.Timedelta(days=61) >= pd.Timestamp(BIG.extract_date)
    assert (gap.between(1, 61) | (ep["end_date"].isna() & late)).all()
    # ... and so do registrations at the address (ambtshalve uitschrijving)
    r = s.registrations.merge(fraud[["address_id", "inspected_at"]], on="address_id")
    ended = r["registered_until"].between(
        r["inspected_at"], r["inspected_at"] + pd.Timedelta(days=61)
    )
    assert ended.groupby(r["address_id"]).any().mean() > 0.8
    # the municipality files its own report a few days after most visits with a violation
    rep = s.reports.loc[s.reports["source"] == "municipality"]
    j = ins.merge(rep, on="address_id")
    after = (j["reported_at"] > j["inspected_at"]) & (
        j["reported_at"] < j["inspected_at"] + pd.Timedelta(days=12)
    )
    followed = (
        after.groupby(j["inspection_id"]).any().reindex(ins["inspection_id"], fill_value=False)
    )
    found = (ins["outcome"] == "violation").to_numpy()
    assert followed[found].mean() > 0.7
    assert followed[~found].mean() < 0.6
