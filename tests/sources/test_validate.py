"""Source validation: every contract rule rejects a broken input, with file, column, rows, rule."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from rich.console import Console
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.sources import (
    TABLES,
    Finding,
    SourceValidationError,
    ValidationReport,
    load_audit_tables,
    load_sources,
    validate_source_dir,
    validate_tables,
)
from stratum_ml.sources.contract import USE_PURPOSES, VIOLATION_TYPES
from stratum_ml.sources.report import print_report
from stratum_ml.sources.schemas import holds_bsn, looks_like_bsn, table_schema

A1, A2, A3 = "0363010000000001", "0363010000000002", "0363010000000003"
YEAR = dt.date.today().year
BSN = "111222333"  # passes the elfproef (checked in test_elfproef_examples)
PSEUDONYM_9_DIGITS = "123456789"  # 9 digits, fails the elfproef: a pseudonym, not a BSN


def _square(x: float, y: float, size: float) -> str:
    """A square polygon as GeoJSON text, lower-left corner at (x, y)."""
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def valid_frames() -> dict[str, pd.DataFrame]:
    """A small valid municipality, as text (how a CSV is read). Missing = None.

    The last row of every table is referenced by no other table, so the
    mutations below break exactly one rule.
    """
    return {
        "addresses": pd.DataFrame(
            {
                "address_id": [A1, A2, A3],
                "building_id": ["0363100000000001", "0363100000000001", "0363100000000002"],
                "postcode": ["1011AB", "1011AB", "1013EF"],
                "house_number": ["1", "3", "12"],
                "house_number_suffix": ["A", None, None],
                "district_code": ["WK036300", "WK036300", "WK036301"],
                "neighbourhood_code": ["BU03630000", "BU03630000", "BU03630101"],
                "floor_area_m2": ["45", "80", "120"],
                "use_purpose": ["woonfunctie", "woonfunctie", "overige gebruiksfunctie"],
                "construction_year": ["1930", "1985", str(YEAR)],
                "tenure": ["owner_occupied", "social_rent", "unknown"],
                "x_rd": ["121000.5", None, "122000"],
                "y_rd": ["487000.25", None, "488000"],
                "street_name": ["Lindenstraat", "Lindenstraat", None],
                "city": ["Amsterdam", "Amsterdam", "Amsterdam"],
            }
        ),
        "areas": pd.DataFrame(
            {
                "code": ["BU03630000", "BU03630101", "WK036300", "WK036301"],
                "level": ["neighbourhood", "neighbourhood", "district", "district"],
                "name": ["Burgwallen-Oude Zijde", "Kinkerbuurt", "Centrum", "Westerpark"],
                "crs": ["EPSG:28992", "EPSG:4326", "EPSG:28992", "EPSG:28992"],
                "geometry": [
                    _square(121000, 487000, 500),
                    _square(4.87, 52.37, 0.01),
                    _square(120500, 486500, 1500),
                    _square(122000, 488000, 1000),
                ],
            }
        ),
        "registrations": pd.DataFrame(
            {
                "person_id": ["P0001", "P0002", "P0001", PSEUDONYM_9_DIGITS],
                "address_id": [A1, A1, A2, A2],
                "registered_from": ["2015-01-01", "2016-03-15", "2018-07-01", "2019-02-01"],
                "registered_until": ["2018-06-30", None, None, "2019-02-01"],
                "birth_year": ["1980", "1990", "1980", "2001"],
                "surname_key": ["S01", "S02", "S01", "S03"],
            }
        ),
        "water_usage": pd.DataFrame(
            {
                "address_id": [A1, A2],
                "period_start": ["2023-01-01", "2023-01-01"],
                "period_end": ["2023-12-31", "2023-12-31"],
                "volume_m3": ["55.5", "120"],
            }
        ),
        "energy_usage": pd.DataFrame(
            {
                "address_id": [A1, A2],
                "year": ["2023", "2023"],
                "electricity_kwh": ["2500.0", None],
                "gas_m3": ["900", "1200.5"],
            }
        ),
        "businesses": pd.DataFrame(
            {
                "business_id": ["000012345678", "000012345679"],
                "address_id": [A1, A2],
                "registered_from": ["2012-01-01", "2020-05-01"],
                "registered_until": [None, "2021-05-01"],
                "sbi_code": ["7810", "47"],
            }
        ),
        "ownership": pd.DataFrame(
            {
                "address_id": [A1, A2],
                "owner_id": ["O1", "O2"],
                "owner_type": ["company", "natural_person"],
                "owned_from": ["2010-01-01", "2001-09-01"],
                "owned_until": [None, "2022-01-01"],
            }
        ),
        "reports": pd.DataFrame(
            {
                "report_id": ["R1", "R2"],
                "address_id": [A1, A2],
                "reported_at": ["2023-03-01T10:15:00+01:00", "2023-04-01 09:00:00"],
                "category": ["overcrowding", "nuisance"],
                "source": ["resident", "anonymous"],
            }
        ),
        "inspections": pd.DataFrame(
            {
                "inspection_id": ["I1", "I2"],
                "address_id": [A1, A2],
                "inspected_at": ["2023-05-01", "2023-06-01"],
                "reason": ["random_sample", "report"],
                "outcome": ["violation", "no_violation"],
                "violation_type": ["overcrowding", None],
            }
        ),
        "audit_attributes": pd.DataFrame(
            {
                "person_id": ["P0001", "P0002"],
                "gender": ["female", "male"],
                "birth_country_group": ["netherlands", "outside_europe"],
            }
        ),
    }


def write_sources(
    folder: Path, frames: dict[str, pd.DataFrame], parquet: tuple[str, ...] = ()
) -> Path:
    """Write frames as ``<table>.csv`` (or ``.parquet`` for tables in ``parquet``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        if name in parquet:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def mutated(table: str, column: str, value: str | None) -> dict[str, pd.DataFrame]:
    """The valid frames with the last row of ``table.column`` set to ``value``."""
    frames = valid_frames()
    frame = frames[table]
    frame.loc[len(frame) - 1, column] = value
    return frames


def only_error(report: ValidationReport) -> Finding:
    assert len(report.errors) == 1, report.summary()
    return report.errors[0]


def printed(report: ValidationReport) -> str:
    console = Console(record=True, width=200)
    print_report(report, console)
    return console.export_text()


# (table, column, bad value for its last row, rule)
MUTATIONS = [
    ("addresses", "address_id", "12345", "pattern ^[0-9]{16}$"),
    ("addresses", "address_id", A1, "unique"),
    ("addresses", "address_id", None, "not null"),
    ("addresses", "building_id", "0363-1000", "pattern ^[0-9]{16}$"),
    ("addresses", "postcode", "0123AB", "pattern ^[1-9][0-9]{3}[A-Z]{2}$"),
    ("addresses", "postcode", "1013 EF", "pattern ^[1-9][0-9]{3}[A-Z]{2}$"),
    ("addresses", "house_number", "0", ">= 1"),
    ("addresses", "house_number", "12a", "type int"),
    ("addresses", "house_number", None, "not null"),
    ("addresses", "district_code", "WK0363", "pattern ^WK[0-9]{6}$"),
    ("addresses", "neighbourhood_code", "BU036301", "pattern ^BU[0-9]{8}$"),
    ("addresses", "floor_area_m2", "100001", "<= 100000"),
    ("addresses", "floor_area_m2", "0", ">= 1"),
    ("addresses", "floor_area_m2", "45.5", "type int"),
    ("addresses", "use_purpose", "Woonfunctie", "domain"),
    ("addresses", "construction_year", str(YEAR + 1), f"<= {YEAR} (current year)"),
    ("addresses", "construction_year", "999", ">= 1000"),
    ("addresses", "tenure", "rented", "domain"),
    ("addresses", "tenure", None, "not null"),
    ("addresses", "x_rd", "121000,5", "type float"),
    ("addresses", "y_rd", "inf", "type float"),
    ("addresses", "neighbourhood_code", "BU03639999", "references areas.code"),
    ("areas", "code", "BU0363", "pattern ^(WK[0-9]{6}|BU[0-9]{8})$"),
    ("areas", "code", "WK036300", "unique"),
    ("areas", "level", "wijk", "domain"),
    ("areas", "name", None, "not null"),
    ("areas", "crs", "EPSG:3857", "domain"),
    ("areas", "geometry", '{"type": "Polygon", "coordinates": [[[0, 0]', "GeoJSON"),
    ("areas", "geometry", '{"type": "Point", "coordinates": [122000, 488000]}', "polygon"),
    (
        "areas",
        "geometry",
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [122000, 488000],
                        [123000, 489000],
                        [123000, 488000],
                        [122000, 489000],
                        [122000, 488000],
                    ]
                ],
            }
        ),
        "valid polygon",
    ),
    ("areas", "geometry", _square(5.0, 52.0, 0.1), "within CRS extent"),
    ("registrations", "person_id", None, "not null"),
    ("registrations", "address_id", "0363019999999999", "references addresses.address_id"),
    ("registrations", "registered_from", "2019-13-01", "type date"),
    ("registrations", "registered_from", "01-02-2019", "type date"),
    ("registrations", "registered_from", "2019-2-1", "type date"),
    ("registrations", "registered_from", "1500-01-01", "type date"),
    ("registrations", "registered_until", "2019-01-31", "registered_until >= registered_from"),
    ("registrations", "birth_year", "1899", ">= 1900"),
    ("registrations", "birth_year", str(YEAR + 1), f"<= {YEAR} (current year)"),
    ("registrations", "surname_key", None, "not null"),
    ("water_usage", "address_id", "0363019999999999", "references addresses.address_id"),
    ("water_usage", "period_end", "2023-01-01", "period_end > period_start"),
    ("water_usage", "volume_m3", "-0.5", ">= 0"),
    ("water_usage", "volume_m3", None, "not null"),
    ("energy_usage", "address_id", "0363019999999999", "references addresses.address_id"),
    ("energy_usage", "year", "2023.5", "type int"),
    ("energy_usage", "electricity_kwh", "-5", ">= 0"),
    ("energy_usage", "gas_m3", "veel", "type float"),
    ("businesses", "business_id", "12345678", "pattern ^[0-9]{12}$"),
    ("businesses", "address_id", "0363019999999999", "references addresses.address_id"),
    ("businesses", "sbi_code", "123456", "pattern ^[0-9]{2,5}$"),
    ("businesses", "sbi_code", "7", "pattern ^[0-9]{2,5}$"),
    ("businesses", "registered_until", "2020-04-30", "registered_until >= registered_from"),
    ("ownership", "address_id", "0363019999999999", "references addresses.address_id"),
    ("ownership", "owner_type", "bank", "domain"),
    ("ownership", "owner_id", None, "not null"),
    ("ownership", "owned_until", "2001-08-31", "owned_until >= owned_from"),
    ("reports", "report_id", "R1", "unique"),
    ("reports", "reported_at", "yesterday", "type timestamp"),
    ("reports", "address_id", "0363019999999999", "references addresses.address_id"),
    ("reports", "category", "noise", "domain"),
    ("reports", "source", "police officer", "domain"),
    ("inspections", "inspection_id", "I1", "unique"),
    ("inspections", "address_id", "0363019999999999", "references addresses.address_id"),
    ("inspections", "inspected_at", None, "not null"),
    ("inspections", "reason", "random", "domain"),
    ("inspections", "outcome", "positive", "domain"),
    (
        "inspections",
        "violation_type",
        "overcrowding",
        "violation_type set only when outcome == violation",
    ),
    ("audit_attributes", "person_id", "P9999", "references registrations.person_id"),
    ("audit_attributes", "gender", "f", "domain"),
    ("audit_attributes", "birth_country_group", "asia", "domain"),
]


def test_valid_sources_pass(tmp_path: Path) -> None:
    report = validate_source_dir(write_sources(tmp_path, valid_frames()))
    assert report.ok, report.summary()
    assert report.findings == []
    assert report.tables["registrations"] == 4
    assert set(report.fingerprints) == {f"{name}.csv" for name in TABLES}
    assert all(len(h) == 64 for h in report.fingerprints.values())
    assert printed(report).strip().endswith("valid: 0 errors, 0 warnings, 0 notes")


def test_every_rule_is_covered() -> None:
    """Each kind of contract rule has at least one mutation above."""
    rules = {rule.split(" ")[0] for *_, rule in MUTATIONS}
    assert {"pattern", "unique", "not", "type", "domain", ">=", "<=", "references"} <= rules
    tested = {(t, c) for t, c, _, _ in MUTATIONS}
    for spec in TABLES.values():
        for order in spec.date_orders:
            assert (spec.name, order.later) in tested
        for cond in spec.set_only_when:
            assert (spec.name, cond.column) in tested
        for col in spec.columns:
            if col.references or col.domain or col.pattern or col.min_value is not None:
                assert (spec.name, col.name) in tested, (spec.name, col.name)


@pytest.mark.parametrize(("table", "column", "value", "rule"), MUTATIONS)
def test_broken_rule_is_reported(
    tmp_path: Path, table: str, column: str, value: str | None, rule: str
) -> None:
    frames = mutated(table, column, value)
    report = validate_source_dir(write_sources(tmp_path, frames))
    finding = only_error(report)
    row = len(frames[table])  # the last data row, 1-based; CSV line row + 1
    assert (finding.table, finding.file, finding.column, finding.rule) == (
        table,
        f"{table}.csv",
        column,
        rule,
    )
    assert finding.rows == [row]
    assert finding.n_failed == 1
    assert f"{table}.csv, column {column}" in finding.message
    assert f"rows {row} (1-based data rows" in finding.message
    assert rule in finding.message


def test_in_memory_tables_report_positions_not_index() -> None:
    frames = mutated("addresses", "tenure", "rented")
    frames["addresses"].index = [10, 20, 30]
    report = validate_tables(frames, files={"addresses": "bag.csv"})
    finding = only_error(report)
    assert (finding.file, finding.rows) == ("bag.csv", [3])
    assert "e.g. 'rented'" in finding.message  # non-identifier values are shown


def test_first_rows_and_count(tmp_path: Path) -> None:
    frames = valid_frames()
    extra = pd.concat([frames["addresses"].iloc[[2]]] * 8, ignore_index=True)
    extra["address_id"] = [f"03630100000001{i:02d}" for i in range(8)]
    extra["postcode"] = ["bad"] * 8
    frames["addresses"] = pd.concat([frames["addresses"], extra], ignore_index=True)
    finding = only_error(validate_source_dir(write_sources(tmp_path, frames)))
    assert finding.n_failed == 8
    assert finding.rows == [4, 5, 6, 7, 8]
    assert "8 rows" in finding.message


def test_missing_required_table_is_an_error(tmp_path: Path) -> None:
    frames = valid_frames()
    del frames["inspections"]
    finding = only_error(validate_source_dir(write_sources(tmp_path, frames)))
    assert (finding.table, finding.rule) == ("inspections", "missing required table")


def test_missing_optional_table_is_a_note(tmp_path: Path) -> None:
    frames = valid_frames()
    del frames["water_usage"]
    report = validate_source_dir(write_sources(tmp_path, frames))
    assert report.ok
    [note] = report.notes
    assert (note.table, note.rule) == ("water_usage", "missing optional table")
    assert "features will be absent" in note.message
    assert load_sources(tmp_path).water_usage is None


def test_missing_required_column_is_an_error(tmp_path: Path) -> None:
    frames = valid_frames()
    frames["addresses"] = frames["addresses"].drop(columns="postcode")
    finding = only_error(validate_source_dir(write_sources(tmp_path, frames)))
    assert (finding.table, finding.file, finding.column, finding.rule) == (
        "addresses",
        "addresses.csv",
        "postcode",
        "missing required column",
    )


def test_extra_column_is_a_warning_and_dropped(tmp_path: Path) -> None:
    frames = valid_frames()
    frames["addresses"]["remarks"] = "x"
    report = validate_source_dir(write_sources(tmp_path, frames))
    assert report.ok
    [warning] = report.warnings
    assert (warning.table, warning.column, warning.rule) == ("addresses", "remarks", "extra column")
    assert "remarks" not in load_sources(tmp_path).addresses.columns


def test_folder_level_findings(tmp_path: Path) -> None:
    frames = valid_frames()
    write_sources(tmp_path, frames, parquet=("water_usage",))
    frames["water_usage"].to_csv(tmp_path / "water_usage.csv", index=False)
    (tmp_path / "readme.txt").write_text("hello")
    report = validate_source_dir(tmp_path)
    error = only_error(report)
    assert (error.table, error.rule) == ("water_usage", "one file per table")
    assert error.file == "water_usage.csv, water_usage.parquet"
    [note] = report.notes
    assert (note.table, note.file, note.rule) == (None, "readme.txt", "unknown file")


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    write_sources(tmp_path, valid_frames())
    with open(tmp_path / "reports.csv", "a") as fh:
        fh.write(f"R3,{A1},2023-01-01,other,police,{BSN}\n")  # one field too many
    report = validate_source_dir(tmp_path)
    finding = only_error(report)
    assert (finding.table, finding.rule) == ("reports", "readable file")
    assert BSN not in report.summary()


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    finding = only_error(validate_source_dir(tmp_path / "nope"))
    assert finding.rule == "source folder"


def test_csv_and_typed_parquet_load_alike(tmp_path: Path) -> None:
    from_csv = load_sources(write_sources(tmp_path / "csv", valid_frames()))
    typed = dict(from_csv.items())
    typed["reports"] = typed["reports"].assign(
        reported_at=typed["reports"]["reported_at"].dt.tz_localize("Europe/Amsterdam")
    )
    write_sources(tmp_path / "pq", typed, parquet=tuple(typed))
    report = validate_source_dir(tmp_path / "pq")
    assert report.ok, report.summary()
    assert {f.rule for f in report.notes} == {"missing optional table"}  # no audit_attributes
    from_parquet = load_sources(tmp_path / "pq")
    for name, frame in from_csv.items():
        pd.testing.assert_frame_equal(frame, from_parquet.get(name), check_exact=True)
    assert set(from_parquet.fingerprints) == {f"{name}.parquet" for name in typed}


def test_typed_values_are_checked_per_row(tmp_path: Path) -> None:
    frames = dict(load_sources(write_sources(tmp_path, valid_frames())).items())
    frames["addresses"]["floor_area_m2"] = [45.0, 80.0, 120.5]  # whole numbers only
    frames["registrations"]["registered_from"] = pd.to_datetime(
        ["2015-01-01", "2016-03-15", "2018-07-01", "2019-02-01T12:00"], format="ISO8601"
    )  # a date has no time of day
    frames["inspections"]["outcome"] = pd.Series(["violation", 7], dtype=object)  # not text
    frames["ownership"]["owner_id"] = [1, 2]  # identifiers are text
    report = validate_tables(frames)
    found = {(f.table, f.column, f.rule, tuple(f.rows)) for f in report.errors}
    assert found == {
        ("addresses", "floor_area_m2", "type int", (3,)),
        ("registrations", "registered_from", "type date", (4,)),
        ("inspections", "outcome", "type category", (2,)),
        ("ownership", "owner_id", "type string", (1, 2)),
    }


@pytest.mark.parametrize(
    ("table", "column", "values"),
    [
        ("addresses", "postcode", pd.array(["1011AB", "1011AB", "1013EF"], dtype="string")),
        (
            "addresses",
            "postcode",
            pd.array(["1011AB", "1011AB", "1013EF"], dtype=pd.ArrowDtype(pa.string())),
        ),
        ("addresses", "tenure", pd.Categorical(["owner_occupied", "social_rent", "unknown"])),
        ("addresses", "house_number", np.array([1, 3, 12], dtype="int32")),
        ("addresses", "floor_area_m2", [45.0, 80.0, 120.0]),
        ("addresses", "x_rd", pd.array([121000, None, 122000], dtype="Int64")),
        (
            "registrations",
            "registered_from",
            [dt.date(2015, 1, 1), dt.date(2016, 3, 15), dt.date(2018, 7, 1), dt.date(2019, 2, 1)],
        ),
        (
            "registrations",
            "registered_until",
            pd.to_datetime(["2018-06-30", None, None, "2019-02-01"]).as_unit("ms"),
        ),
        ("registrations", "birth_year", pd.Series([1980, "1990", 1980, None], dtype=object)),
        (
            "reports",
            "reported_at",
            pd.to_datetime(["2023-03-01 09:15", "2023-04-01 07:00"], utc=True),
        ),
    ],
)
def test_typed_forms_are_accepted(table: str, column: str, values: object) -> None:
    frames = valid_frames()
    frames[table][column] = values
    report = validate_tables(frames)
    if column == "birth_year":  # the missing value is the only finding
        assert [(f.rule, f.rows) for f in report.errors] == [("not null", [4])]
    else:
        assert report.ok, report.summary()


def test_load_sources_normalises(tmp_path: Path) -> None:
    tables = load_sources(write_sources(tmp_path, valid_frames()))
    assert tables.source_dir == tmp_path
    assert set(tables.fingerprints) == {f"{n}.csv" for n in tables.available}
    assert "audit_attributes.csv" not in tables.fingerprints  # protected data is not read
    addresses = tables.addresses
    assert list(addresses.columns) == list(TABLES["addresses"].column_names)
    assert list(addresses["use_purpose"].cat.categories) == list(USE_PURPOSES)
    assert addresses["house_number"].dtype == np.int64
    assert addresses["x_rd"].dtype == np.float64
    assert addresses["house_number_suffix"].isna().tolist() == [False, True, True]
    assert addresses["address_id"].tolist() == [A1, A2, A3]  # leading zeros kept
    inspections = tables.inspections
    assert list(inspections["violation_type"].cat.categories) == list(VIOLATION_TYPES)
    assert inspections["inspected_at"].dtype == "datetime64[ns]"
    assert tables.reports is not None
    reported_at = tables.reports["reported_at"]
    assert reported_at.dtype == "datetime64[ns]"
    assert reported_at.tolist() == [
        pd.Timestamp("2023-03-01 10:15"),  # +01:00 is Amsterdam winter time
        pd.Timestamp("2023-04-01 09:00"),
    ]
    table_schema(TABLES["addresses"]).validate(addresses)  # normalised tables pass the schema


def test_load_sources_raises_with_readable_message(tmp_path: Path) -> None:
    frames = mutated("addresses", "postcode", "0123AB")
    del frames["inspections"]
    with pytest.raises(SourceValidationError) as caught:
        load_sources(write_sources(tmp_path, frames))
    text = str(caught.value)
    lines = text.splitlines()
    assert lines[0] == f"{tmp_path}: NOT valid: 2 errors, 0 warnings, 0 notes"
    assert any("addresses.csv, column postcode" in line and "rows 3" in line for line in lines)
    assert any("required table inspections" in line for line in lines)
    assert caught.value.report.errors


def test_load_audit_tables(tmp_path: Path) -> None:
    write_sources(tmp_path, valid_frames())
    audit = load_audit_tables(tmp_path)
    assert audit is not None
    assert list(audit.audit_attributes["gender"].cat.categories) == [
        "female",
        "male",
        "other",
        "unknown",
    ]
    assert set(audit.fingerprints) == {"audit_attributes.csv", "registrations.csv"}
    (tmp_path / "audit_attributes.csv").unlink()
    assert load_audit_tables(tmp_path) is None


def test_load_audit_tables_checks_the_reference(tmp_path: Path) -> None:
    write_sources(tmp_path, mutated("audit_attributes", "person_id", "P9999"))
    with pytest.raises(SourceValidationError) as caught:
        load_audit_tables(tmp_path)
    finding = only_error(caught.value.report)
    assert (finding.rule, finding.rows) == ("references registrations.person_id", [2])
    (tmp_path / "registrations.csv").unlink()
    with pytest.raises(SourceValidationError, match="required table registrations"):
        load_audit_tables(tmp_path)


def test_elfproef_examples() -> None:
    def elfproef(number: str) -> bool:
        d = [int(c) for c in number]
        return (sum(d[i] * (9 - i) for i in range(8)) - d[8]) % 11 == 0 and any(d)

    assert elfproef(BSN)
    assert not elfproef(PSEUDONYM_9_DIGITS)
    values = pd.Series([BSN, PSEUDONYM_9_DIGITS, "000000000", "1112223330", None, "11122233a"])
    assert looks_like_bsn(values).tolist() == [True, False, False, False, False, False]


def _bsn_as_text(column: pd.Series) -> np.ndarray:
    """The BSN test of any column by its text, as every column was tested before holds_bsn."""
    present = column.notna().to_numpy(dtype=bool)
    text = column.astype("string").str.strip()
    return looks_like_bsn(text.where(present, "")).to_numpy(dtype=bool)


@pytest.mark.parametrize(
    "column",
    [
        pd.Series([111222333, 123456789, 12345678, -111222333, 1112223330, 0, 100000009]),
        pd.Series([111222333, 99999999, 1000000000], dtype="uint64"),
        pd.Series([111222333, None, 123456782, 7], dtype="Int64"),
        pd.Series([111222333, 999999990], dtype="int32"),
        pd.Series([111222333.0, 123456782.0, 1e20, np.nan, np.inf, 0.5, 1e8]),
        pd.Series([111222333.0, None], dtype="Float64"),
        pd.Series(np.array([111222333.0, 1e8], dtype="float32")),
        pd.Series([True, False]),
        pd.Series(pd.to_datetime(["2020-01-01", None, "1999-12-31"])),
        pd.Series(
            pd.to_datetime(["2020-01-01T10:00:00+01:00", "2021-06-30T00:00:00+02:00"], utc=True)
        ),
        pd.Series(pd.to_timedelta([1, 111222333], unit="s")),
        pd.Series([" 111222333 ", "123456789", None, "111222333", "x"], dtype="str"),
        pd.Series(["111222333", 111222333, None, 1.5], dtype=object),
        pd.Series(["111222333", "12"], dtype="category"),
        pd.Series(pd.array([111222333, None], dtype="int64[pyarrow]")),
        pd.Series(pd.array([111222333.0, 1.0], dtype="double[pyarrow]")),
    ],
    ids=lambda c: str(c.dtype),
)
def test_holds_bsn_finds_what_the_text_of_every_value_shows(column: pd.Series) -> None:
    assert holds_bsn(column).tolist() == _bsn_as_text(column).tolist()


def test_holds_bsn_finds_integer_bsns() -> None:
    column = pd.Series([111222333, 123456782, 123456789, 11122233, None], dtype="Int64")
    assert holds_bsn(column).tolist() == [True, True, False, False, False]


@pytest.mark.parametrize(
    ("table", "column", "extra_rules"),
    [
        ("registrations", "person_id", set()),
        ("addresses", "building_id", {"pattern ^[0-9]{16}$"}),
        ("inspections", "inspection_id", set()),
    ],
)
def test_bsn_is_rejected_and_never_shown(
    tmp_path: Path, table: str, column: str, extra_rules: set[str]
) -> None:
    frames = mutated(table, column, BSN)
    write_sources(tmp_path, frames)
    report = validate_source_dir(tmp_path)
    rules = {f.rule for f in report.errors}
    assert rules == {"BSN elfproef"} | extra_rules
    [bsn] = [f for f in report.errors if f.rule == "BSN elfproef"]
    assert (bsn.file, bsn.column, bsn.rows) == (f"{table}.csv", column, [len(frames[table])])
    with pytest.raises(SourceValidationError) as caught:
        load_sources(tmp_path)
    everything = "\n".join(
        [report.summary(), printed(report), str(caught.value), *map(repr, report.findings)]
    )
    assert f"{table}.csv" in everything
    assert BSN not in everything


def test_nine_digit_pseudonym_passes(tmp_path: Path) -> None:
    frames = valid_frames()
    assert PSEUDONYM_9_DIGITS in frames["registrations"]["person_id"].tolist()
    assert validate_source_dir(write_sources(tmp_path, frames)).ok


def test_print_report_groups_by_table(tmp_path: Path) -> None:
    frames = mutated("addresses", "tenure", "rented")
    frames["reports"]["note"] = "x"
    text = printed(validate_source_dir(write_sources(tmp_path, frames)))
    assert text.index("addresses  addresses.csv · 3 rows") < text.index("rented")
    assert text.index("reports  reports.csv") < text.index("extra column")
    assert text.strip().splitlines()[-1] == "NOT valid: 1 error, 1 warning, 0 notes"


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    good = write_sources(tmp_path / "good", valid_frames())
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "valid: 0 errors" in result.output
    bad = write_sources(tmp_path / "bad", mutated("addresses", "postcode", "0123AB"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1, result.output
    assert "NOT valid: 1 error" in result.output


@pytest.mark.parametrize(
    ("table", "column", "parquet"),
    [
        ("registrations", "bsn", False),  # an extra column named for what it holds
        ("addresses", "remarks", False),  # an extra column with an innocent name
        ("addresses", "house_number_suffix", False),  # a contract column, not an identifier
        ("registrations", "nummer", True),  # Parquet integers
    ],
)
def test_a_column_of_bsns_is_refused_whatever_its_name(
    tmp_path: Path, table: str, column: str, parquet: bool
) -> None:
    frames = valid_frames()
    n = len(frames[table])
    bsns = ["111222333", "123456782", "999999990", "100000009"][:n]
    assert looks_like_bsn(pd.Series(bsns)).all()
    frames[table][column] = [int(b) for b in bsns] if parquet else bsns
    write_sources(tmp_path, frames, parquet=(table,) if parquet else ())
    report = validate_source_dir(tmp_path)
    assert not report.ok
    [error] = [f for f in report.errors if f.column == column]
    assert error.rule == "BSN elfproef" and error.rows == list(range(1, n + 1))
    assert "whatever the column is called" in error.message
    assert not [w for w in report.warnings if w.column == column]  # not "extra column ignored"
    with pytest.raises(SourceValidationError) as caught:
        load_sources(tmp_path)
    everything = "\n".join(
        [report.summary(), printed(report), str(caught.value), *map(repr, report.findings)]
    )
    for bsn in bsns:
        assert bsn not in everything


def test_a_reference_lookup_hashed_once_finds_what_is_in_finds() -> None:
    """The stream's lookup of referenced values gives Arrow's is_in answer, block by block."""
    from stratum_ml.sources.validate._rules import ReferenceLookup, _isin

    parent = pd.Series([A1, A2, None, A2, "x"], dtype="str")
    lookup = ReferenceLookup(parent)
    blocks = [
        pd.Series([A1, A3, None, A2, A1, "x", ""], dtype="str"),
        pd.Series([None, None], dtype="str"),
        pd.Series([], dtype="str"),
    ]
    blocks.append(pd.concat(blocks[:2], ignore_index=True))  # in Arrow chunks, as read
    for block in blocks:
        assert lookup.contains(block).tolist() == _isin(block, parent).tolist()
    assert lookup.contains(blocks[0]).tolist() == [True, False, False, True, True, True, False]
