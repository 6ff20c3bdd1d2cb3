"""Every command that takes a date refuses one after the extract date of the sources (fast).

The refusal comes before any model is looked up, so these run in an empty
``STRATUM_HOME``: a date after the data is a usage error (exit 2) whether or
not a model exists.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.sources import read_extract_date
from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality

CONFIG = GeneratorConfig(n_addresses=300, seed=2)
EXTRACT = CONFIG.extract_date.isoformat()  # 2026-11-01
DECLARED = f"{EXTRACT} (declared in extract.json)"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("dates")
    generate_municipality(CONFIG, base / "sources", base / "truth.parquet")
    return base / "sources"


def run(args: list[str], home: Path) -> tuple[int, str]:
    env = {"STRATUM_HOME": str(home), "STRATUM_MLFLOW_URI": "", "STRATUM_AS_OF": None}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def refused(code: int, out: str, as_of: str, extract: str = DECLARED) -> bool:
    return code == 2 and f"{as_of} is after the extract date of the sources, {extract}" in out


@pytest.mark.parametrize("as_of", ["2031-01-01", "2026-11-02"])
def test_score_refuses_a_date_after_the_extract(sources: Path, tmp_path: Path, as_of: str) -> None:
    out = tmp_path / "list.csv"
    args = ["score", "--sources", str(sources), "--as-of", as_of, "--out", str(out)]
    code, text = run(args, tmp_path / "home")
    assert refused(code, text, as_of), text
    assert "--as-of" in text and "no model" not in text
    assert not out.exists()


def test_features_refuses_a_date_after_the_extract(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "features.parquet"
    args = ["features", "--sources", str(sources), "--as-of", "2031-01-01", "--out", str(out)]
    code, text = run(args, tmp_path / "home")
    assert refused(code, text, "2031-01-01"), text
    assert not out.exists()


def test_drift_refuses_a_date_after_the_extract(sources: Path, tmp_path: Path) -> None:
    args = ["drift", "--sources", str(sources), "--as-of", "2031-01-01"]
    code, text = run(args, tmp_path / "home")
    assert refused(code, text, "2031-01-01"), text
    assert "no model" not in text


def test_features_accept_the_extract_date_itself(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "features.parquet"
    args = ["features", "--sources", str(sources), "--as-of", EXTRACT, "--out", str(out)]
    code, text = run(args, tmp_path / "home")
    assert code == 0, text
    assert len(pd.read_parquet(out)) == CONFIG.n_addresses


def test_serve_refuses_a_date_after_the_extract_before_starting(
    sources: Path, tmp_path: Path
) -> None:
    """No server, no keys, no champion needed: the date is checked first."""
    home = tmp_path / "home"
    code, text = run(["serve", "--sources", str(sources), "--as-of", "2031-01-01"], home)
    assert refused(code, text, "2031-01-01"), text
    assert "the scoring date (STRATUM_AS_OF)" in text
    assert "bentoml" not in text.lower() and not (home / "bentoml").exists()


def test_a_derived_extract_date_is_named_with_its_origin(sources: Path, tmp_path: Path) -> None:
    derived = tmp_path / "sources"
    shutil.copytree(sources, derived)
    (derived / "extract.json").unlink()
    extract = read_extract_date(derived)
    assert not extract.declared and extract.date <= CONFIG.extract_date
    late = (extract.date + dt.timedelta(days=1)).isoformat()
    out = tmp_path / "list.csv"
    args = ["score", "--sources", str(derived), "--as-of", late, "--out", str(out)]
    code, text = run(args, tmp_path / "home")
    assert refused(code, text, late, str(extract)), text
    assert "(derived: the day after the latest date the folder holds, " in text


def test_a_declaration_before_the_data_is_bad_data(sources: Path, tmp_path: Path) -> None:
    broken = tmp_path / "sources"
    shutil.copytree(sources, broken)
    (broken / "extract.json").write_text('{"extract_date": "2026-01-01"}\n', encoding="utf-8")
    out = tmp_path / "list.csv"
    args = ["score", "--sources", str(broken), "--as-of", "2025-06-01", "--out", str(out)]
    code, text = run(args, tmp_path / "home")
    assert code == 1, text
    assert "extract.json declares the extract date 2026-01-01" in text
    code, text = run(["validate", str(broken)], tmp_path / "home")
    assert code == 1 and "extract.json declares the extract date 2026-01-01" in text


@pytest.mark.parametrize("as_of", ["2031-01-01", "2026-11-02"])
def test_run_refuses_a_date_after_the_extract(sources: Path, tmp_path: Path, as_of: str) -> None:
    home = tmp_path / "home"
    code, text = run(["run", "--sources", str(sources), "--as-of", as_of, "--json"], home)
    assert refused(code, text, as_of), text
    assert "no model" not in text and not (home / "stratum.db").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--engine", "spark"], "--engine must be one of local, partitioned, dask, not 'spark'"),
        (["--engine", "partitioned", "--scheduler", "tcp://x:8786"], "--scheduler needs"),
    ],
)
def test_run_refuses_a_bad_engine_before_anything(
    sources: Path, tmp_path: Path, options: list[str], message: str
) -> None:
    home = tmp_path / "home"
    code, text = run(["run", "--sources", str(sources), "--as-of", EXTRACT, *options], home)
    assert code == 2 and message in text, text
    assert "no model" not in text and not (home / "stratum.db").exists()
