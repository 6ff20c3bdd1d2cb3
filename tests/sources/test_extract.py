"""The extract date of a source folder: derived from its dates or declared, and the guard."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from stratum_ml.sources import (
    AsOfAfterExtractError,
    ExtractDate,
    ExtractDateError,
    SourceValidationError,
    extract_date,
    guard_as_of,
    load_sources,
    read_extract_date,
    validate_source_dir,
)
from stratum_ml.sources.contract import EXTRACT_COLUMNS, TABLES
from stratum_ml.sources.extract import (
    LatestDate,
    declaration_text,
    latest_date,
    read_declaration,
    resolve_extract_date,
)
from tests.sources.test_validate import A1, A2, printed, valid_frames, write_sources

#: the latest date of valid_frames(): water periods end, and the energy year 2023 ends, then
LATEST = dt.date(2023, 12, 31)


def declare(folder: Path, text: str) -> Path:
    (folder / "extract.json").write_text(text, encoding="utf-8")
    return folder


def test_every_dated_column_counts() -> None:
    dated = {c.qualified for c in EXTRACT_COLUMNS}
    for table in TABLES.values():
        for column in table.columns:
            if column.kind in ("date", "timestamp"):
                assert f"{table.name}.{column.name}" in dated
        if table.own_date is not None:
            assert f"{table.name}.{table.own_date}" in dated
    assert [c.qualified for c in EXTRACT_COLUMNS if c.year] == ["energy_usage.year"]


def test_derived_from_the_latest_date_held(tmp_path: Path) -> None:
    folder = write_sources(tmp_path, valid_frames())
    extract = read_extract_date(folder)
    assert extract == extract_date(load_sources(folder))
    assert extract.date == LATEST + dt.timedelta(days=1)
    assert not extract.declared
    assert extract.latest == LatestDate(LATEST, "water_usage.period_end")  # first of a tie
    assert str(extract) == (
        "2024-01-01 (derived: the day after the latest date the folder holds, "
        "2023-12-31 in water_usage.period_end)"
    )
    report = validate_source_dir(folder)
    assert report.extract == extract
    assert "extract date: 2024-01-01 (derived" in printed(report)


def test_an_energy_year_counts_as_its_last_day(tmp_path: Path) -> None:
    frames = valid_frames()
    del frames["water_usage"]
    frames["energy_usage"]["year"] = ["2023", "2024"]
    folder = write_sources(tmp_path, frames)
    extract = read_extract_date(folder)
    assert extract.latest == LatestDate(dt.date(2024, 12, 31), "energy_usage.year")
    assert extract.date == dt.date(2025, 1, 1) == extract_date(load_sources(folder)).date


def test_a_timestamp_counts_on_its_local_day(tmp_path: Path) -> None:
    frames = valid_frames()
    # 23:30 UTC on 31 March 2024 is 01:30 on 1 April in Amsterdam
    frames["reports"]["reported_at"] = ["2024-03-31T23:30:00Z", "2023-04-01 09:00:00"]
    folder = write_sources(tmp_path, frames, parquet=("water_usage",))
    extract = read_extract_date(folder)
    assert extract.latest == LatestDate(dt.date(2024, 4, 1), "reports.reported_at")
    assert extract.date == dt.date(2024, 4, 2) == extract_date(load_sources(folder)).date


def test_a_declared_date_after_the_data_is_used(tmp_path: Path) -> None:
    folder = declare(write_sources(tmp_path, valid_frames()), declaration_text(dt.date(2024, 2, 1)))
    report = validate_source_dir(folder)
    assert report.ok, report.summary()
    assert report.findings == []  # extract.json is part of the folder, not an unknown file
    assert "extract.json" in report.fingerprints
    tables = load_sources(folder)
    assert tables.declared_extract_date == dt.date(2024, 2, 1)
    assert "extract.json" in tables.fingerprints
    extract = extract_date(tables)
    assert extract == read_extract_date(folder)
    assert (extract.date, extract.declared) == (dt.date(2024, 2, 1), True)
    assert str(extract) == "2024-02-01 (declared in extract.json)"
    assert "extract date: 2024-02-01 (declared in extract.json)" in printed(report)


@pytest.mark.parametrize("declared", ["2023-12-31", "2023-06-01"])
def test_a_declared_date_on_or_before_a_date_held_is_refused(tmp_path: Path, declared: str) -> None:
    folder = declare(write_sources(tmp_path, valid_frames()), f'{{"extract_date": "{declared}"}}')
    report = validate_source_dir(folder)
    assert len(report.errors) == 1, report.summary()
    error = report.errors[0]
    assert (error.file, error.rule, error.table) == ("extract.json", "extract date", None)
    assert f"declares the extract date {declared}" in error.message
    assert "2023-12-31 in water_usage.period_end" in error.message
    assert A1 not in report.summary() and A2 not in report.summary()  # no person data
    with pytest.raises(SourceValidationError, match="extract.json declares"):
        load_sources(folder)
    with pytest.raises(ExtractDateError, match="2023-12-31 in water_usage.period_end"):
        read_extract_date(folder)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("extract_date: 2024-02-01", "cannot be read"),
        ('["2024-02-01"]', "has no 'extract_date'"),
        ("{}", "has no 'extract_date'"),
        ('{"extract_date": "2024-02-01", "note": "x"}', "unknown keys 'note'"),
        ('{"extract_date": "2024-13-01"}', "must be a date YYYY-MM-DD, not '2024-13-01'"),
        ('{"extract_date": "1-2-2024"}', "must be a date YYYY-MM-DD"),
        ('{"extract_date": 20240201}', "must be a date YYYY-MM-DD, not '20240201'"),
        ('{"extract_date": "2024-02-01T00:00"}', "must be a date YYYY-MM-DD"),
    ],
)
def test_a_broken_declaration_is_an_error_naming_the_file(
    tmp_path: Path, text: str, says: str
) -> None:
    folder = declare(write_sources(tmp_path, valid_frames()), text)
    report = validate_source_dir(folder)
    assert len(report.errors) == 1, report.summary()
    assert report.errors[0].file == "extract.json"
    assert report.errors[0].message.startswith("extract.json")
    assert says in report.errors[0].message
    with pytest.raises(ExtractDateError, match=says.replace("(", r"\(")):
        read_declaration(folder)
    with pytest.raises(SourceValidationError, match="extract.json"):
        load_sources(folder)


def test_the_declaration_text_reads_back(tmp_path: Path) -> None:
    text = declaration_text(dt.date(2026, 11, 1))
    assert json.loads(text) == {"extract_date": "2026-11-01"}
    assert read_declaration(declare(tmp_path, text)) == dt.date(2026, 11, 1)
    assert read_declaration(tmp_path / "nowhere") is None


def test_no_date_at_all_cannot_be_derived() -> None:
    empty = {"inspections": pd.DataFrame({"inspected_at": pd.to_datetime([])})}
    assert latest_date(empty) is None
    with pytest.raises(ExtractDateError, match="holds no dated row and declares no extract"):
        resolve_extract_date(None, None)
    declared = resolve_extract_date(None, dt.date(2024, 1, 1))
    assert (declared.date, declared.declared, declared.latest) == (dt.date(2024, 1, 1), True, None)


def test_read_extract_date_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        read_extract_date(tmp_path / "nowhere")


def test_the_guard_allows_the_extract_date_and_refuses_later() -> None:
    derived = ExtractDate(
        dt.date(2024, 1, 1), declared=False, latest=LatestDate(LATEST, "water_usage.period_end")
    )
    assert guard_as_of(dt.date(2024, 1, 1), derived) == dt.date(2024, 1, 1)
    assert guard_as_of(dt.date(2020, 1, 1), derived) == dt.date(2020, 1, 1)
    with pytest.raises(AsOfAfterExtractError) as caught:
        guard_as_of(dt.date(2024, 1, 2), derived, what="STRATUM_AS_OF")
    message = str(caught.value)
    assert message.startswith("STRATUM_AS_OF 2024-01-02 is after the extract date")
    assert "2024-01-01 (derived: the day after the latest date the folder holds, " in message
    assert "2023-12-31 in water_usage.period_end" in message
    declared = ExtractDate(dt.date(2024, 2, 1), declared=True, latest=None)
    with pytest.raises(AsOfAfterExtractError, match=r"2024-02-01 \(declared in extract.json\)"):
        guard_as_of(dt.date(2031, 1, 1), declared)
