"""Atomic table output: CSV exports neutralise spreadsheet formulas."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from stratum_ml.io import write_frame_atomic

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
