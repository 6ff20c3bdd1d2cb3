"""Atomic table output: CSV exports neutralise spreadsheet formulas."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from stratum_ml.io import write_frame_atomic, write_frames_atomic

RISKY = ['=HYPERLINK("http://x")', "\t=1+1", "  +cmd|' /C calc'!A0", "@SUM(A1)", "-2+3", "\t-1"]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "address_id": ["0479010000000001"] * len(RISKY),
            "reason": RISKY,
            "delta": [-1.5, 2.0, -3.0, 0.0, 1.0, -2.0],
        }
    )


def test_csv_export_neutralises_formulas(tmp_path: Path) -> None:
    out = tmp_path / "list.csv"
    write_frame_atomic(_frame(), out)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["reason"] for r in rows] == [f"'{v}" for v in RISKY]
    assert [float(r["delta"]) for r in rows] == [-1.5, 2.0, -3.0, 0.0, 1.0, -2.0]  # numbers stay
    assert {r["address_id"] for r in rows} == {"0479010000000001"}


@pytest.mark.parametrize("name", ["data.parquet", "data.csv"])
def test_data_files_are_written_as_they_are_when_asked(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    write_frame_atomic(_frame(), out, spreadsheet_safe=False)
    back = pd.read_parquet(out) if name.endswith(".parquet") else pd.read_csv(out, dtype=str)
    assert back["reason"].tolist() == RISKY


@pytest.mark.parametrize("name", ["data.parquet", "data.csv"])
def test_frames_written_one_by_one_are_the_file_of_the_whole_frame(
    tmp_path: Path, name: str
) -> None:
    whole = _frame()
    write_frame_atomic(whole, tmp_path / f"whole-{name}")
    rows = write_frames_atomic((whole.iloc[i : i + 2] for i in range(0, 6, 2)), tmp_path / name)
    assert rows == len(whole)
    if name.endswith(".csv"):
        assert (tmp_path / name).read_text() == (tmp_path / f"whole-{name}").read_text()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / name), whole)


@pytest.mark.parametrize("name", ["data.parquet", "data.csv"])
def test_frames_that_fail_half_way_leave_no_file(tmp_path: Path, name: str) -> None:
    def frames() -> Iterator[pd.DataFrame]:
        yield _frame()
        raise RuntimeError("the second frame failed")

    with pytest.raises(RuntimeError, match="second frame"):
        write_frames_atomic(frames(), tmp_path / name)
    other = _frame().rename(columns={"delta": "other"})
    with pytest.raises(ValueError, match="columns differ"):
        write_frames_atomic(iter([_frame(), other]), tmp_path / name)
    with pytest.raises(ValueError, match="no frame to write"):
        write_frames_atomic(iter([]), tmp_path / name)
    assert list(tmp_path.iterdir()) == []
