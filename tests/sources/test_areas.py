"""The optional street and city columns and the optional areas table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stratum_ml.sources import load_sources, validate_source_dir, validate_tables
from stratum_ml.sources.geometry import geometry_problems
from tests.sources.test_validate import _square, valid_frames, write_sources


def test_street_and_city_may_be_left_out(tmp_path: Path) -> None:
    frames = valid_frames()
    frames["addresses"] = frames["addresses"].drop(columns=["street_name", "city"])
    report = validate_source_dir(write_sources(tmp_path, frames))
    assert report.ok, report.summary()
    assert report.findings == []
    addresses = load_sources(tmp_path).addresses
    assert "street_name" not in addresses.columns


def test_street_and_city_are_loaded_as_text(tmp_path: Path) -> None:
    tables = load_sources(write_sources(tmp_path, valid_frames()))
    assert tables.addresses["street_name"].tolist()[:2] == ["Lindenstraat", "Lindenstraat"]
    assert tables.addresses["street_name"].isna().tolist() == [False, False, True]
    assert tables.areas is not None
    assert tables.areas["level"].astype(str).tolist()[:2] == ["neighbourhood", "neighbourhood"]


def test_areas_may_be_left_out_and_then_codes_are_not_checked(tmp_path: Path) -> None:
    frames = valid_frames()
    del frames["areas"]
    frames["addresses"].loc[2, "neighbourhood_code"] = "BU03639999"
    report = validate_source_dir(write_sources(tmp_path, frames))
    assert report.ok, report.summary()
    (note,) = report.findings
    assert note.table == "areas" and note.severity == "note"
    assert "codes instead of names" in note.message


def test_an_unknown_neighbourhood_names_table_column_and_row() -> None:
    frames = valid_frames()
    frames["addresses"].loc[1, "neighbourhood_code"] = "BU03639999"
    (error,) = validate_tables(frames, files={"addresses": "bag.csv"}).errors
    assert (error.table, error.column, error.rows) == ("addresses", "neighbourhood_code", [2])
    assert "references areas.code" in error.message and "bag.csv" in error.message


def test_geometry_problems_per_rule() -> None:
    text = pd.Series(
        [
            _square(121000, 487000, 100),
            "not json",
            '{"type": "LineString", "coordinates": [[0, 0], [1, 1]]}',
            _square(121000, 487000, 100),
            _square(4.9, 52.3, 0.01),
            None,
        ]
    )
    crs = pd.Series(["EPSG:28992", "EPSG:28992", "EPSG:28992", "EPSG:4326", "EPSG:4326", None])
    problems = geometry_problems(text, crs)
    assert problems["GeoJSON"].tolist() == [False, True, False, False, False, False]
    assert problems["polygon"].tolist() == [False, False, True, False, False, False]
    # RD coordinates stated as WGS84: outside the Netherlands in that CRS
    assert problems["within CRS extent"].tolist() == [False, False, False, True, False, False]
    assert not problems["valid polygon"].any()


def test_a_code_must_fit_its_level() -> None:
    frames = valid_frames()
    frames["areas"].loc[3, "level"] = "neighbourhood"  # WK036301, a district code
    (error,) = validate_tables(frames).errors
    assert (error.table, error.column, error.rows) == ("areas", "code", [4])
    assert error.rule == "code ^BU[0-9]{8}$ when level == neighbourhood"
