"""The command line without training: the command list and usage errors (fast)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from stratum_ml.cli import app

COMMANDS = [
    "validate",
    "generate",
    "features",
    "promote",
    "train",
    "score",
    "evaluate",
    "compare",
    "serve",
    "keys",
    "audit",
    "pause",
    "resume",
    "docs",
]


def test_every_command_is_listed() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    positions = [result.output.find(f" {name} ") for name in COMMANDS]
    assert all(p >= 0 for p in positions), result.output


def test_a_bad_date_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    args = ["features", "--sources", str(tmp_path), "--as-of", "1-6-2026", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    assert not out.exists()


def test_an_unknown_format_is_refused_before_generating(tmp_path: Path) -> None:
    args = ["generate", "--out", str(tmp_path / "s"), "--truth", str(tmp_path / "t.parquet")]
    result = CliRunner().invoke(app, [*args, "--format", "xlsx"])
    assert result.exit_code == 2 and "csv or parquet" in result.output
    assert not (tmp_path / "s").exists()
