"""The command line end to end: generate -> validate -> features -> train -> promote -> score
-> drift -> run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stratum-home")


def run(args: list[str], home: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, args, env={"STRATUM_HOME": str(home), "STRATUM_MLFLOW_URI": ""}
    )
    return result.exit_code, result.output


def test_pipeline(home: Path, tmp_path: Path) -> None:
    src, truth = home / "sources", home / "truth.parquet"
    code, out = run(
        [
            "generate",
            "--out",
            str(src),
            "--truth",
            str(truth),
            "--addresses",
            "8000",
            "--seed",
            "5",
        ],
        home,
    )
    assert code == 0, out
    code, out = run(["validate", str(src)], home)
    assert code == 0, out

    features = tmp_path / "features.parquet"
    code, out = run(
        ["features", "--sources", str(src), "--as-of", "2026-06-01", "--out", str(features)], home
    )
    assert code == 0, out
    table = pd.read_parquet(features)
    assert len(table) == 8000 and "water_ratio_to_expected" in table.columns

    code, out = run(["train", "--sources", str(src)], home)
    assert code == 0, out
    assert "honest" in out and "challenger" in out

    code, out = run(["evaluate", "--sources", str(src), "--truth", str(truth)], home)
    assert code == 0, out
    assert "true precision@k" in out

    code, out = run(["promote"], home)  # the first version: only the fairness gate decides
    assert code == 0 and "PROMOTED" in out and "fairness gate: passed" in out, out

    listing = tmp_path / "list.csv"
    code, out = run(
        [
            "score",
            "--sources",
            str(src),
            "--as-of",
            "2026-11-01",
            "--top",
            "20",
            "--out",
            str(listing),
        ],
        home,
    )
    assert code == 0, out
    ranked = pd.read_csv(listing)
    assert ranked["rank"].tolist()[:3] == [1, 2, 3]
    assert ranked["reason_1"].head(20).notna().all()
    assert ranked["reason_1"].iloc[20:].isna().all()  # only the top K is explained

    _check_drift(home, src, tmp_path)


def _check_drift(home: Path, src: Path, tmp_path: Path) -> None:
    """``stratum drift`` as of the extract date: quiet as generated, loud with water halved.

    The reference is the population as of the training sources' extract date (the
    world a fresh model is first used in), so its first run there is not drifted.
    """
    code, out = run(["drift", "--sources", str(src), "--as-of", "2026-11-01", "--json"], home)
    assert code == 0, out
    first = json.loads(out)
    assert first["model_version"] == "1" and first["drifted"] is False, first["reasons"]
    assert first["reference_as_of"] == "2026-11-01"
    quarter_on = first["reference_as_of"]  # the sources end there: no later date exists
    code, out = run(["drift", "--sources", str(src), "--as-of", quarter_on], home)
    assert code == 0 and "not drifted" in out, out

    shifted = tmp_path / "shifted"
    shutil.copytree(src, shifted)
    (water,) = shifted.glob("water_usage.*")
    frame = pd.read_parquet(water) if water.suffix == ".parquet" else pd.read_csv(water)
    frame["volume_m3"] = frame["volume_m3"] / 2
    if water.suffix == ".parquet":
        frame.to_parquet(water, index=False)
    else:
        frame.to_csv(water, index=False)
    code, out = run(["drift", "--sources", str(shifted), "--as-of", quarter_on, "--json"], home)
    assert code == 1, out
    result = json.loads(out)
    assert result["drifted"] and any(r.startswith("water_") for r in result["reasons"])

    code, out = run(["drift", "--sources", str(src), "--as-of", quarter_on, "--model", "7"], home)
    assert code == 2 and "no model" in out


def test_a_date_after_the_data_is_refused_with_a_champion(home: Path, tmp_path: Path) -> None:
    """The guard holds with a model in place too: score and evaluate, exit 2, nothing written."""
    src, truth = home / "sources", home / "truth.parquet"
    listing = tmp_path / "late.csv"
    late = ["--as-of", "2031-01-01"]
    code, out = run(["score", "--sources", str(src), *late, "--out", str(listing)], home)
    said = " ".join(out.split())
    assert code == 2 and "2026-11-01 (declared in extract.json)" in said, out
    assert not listing.exists()
    code, out = run(
        ["evaluate", "--sources", str(src), "--model", "champion", "--truth", str(truth), *late],
        home,
    )
    said = " ".join(out.split())
    assert code == 2 and "after the extract date of the sources, 2026-11-01" in said, out


def test_monthly_runs_with_the_champion(home: Path, tmp_path: Path) -> None:
    """``stratum run`` twice a month apart, again (same run), then list, show and changes."""
    from mlflow import MlflowClient

    src = home / "sources"  # made, trained on and promoted by test_pipeline
    ids = []
    for as_of in ("2026-10-01", "2026-11-01", "2026-11-01"):
        code, out = run(
            ["run", "--sources", str(src), "--as-of", as_of, "--top", "50", "--json"], home
        )
        assert code == 0, out
        summary = json.loads(out)
        assert summary["model_version"] == "1" and summary["drift_note"] is None
        assert isinstance(summary["drifted"], bool) and summary["n_items"] > 0
        ids.append(summary["run_id"])
    first, second, again = ids
    assert second == again and first != second
    assert not summary["stored_now"] and summary["previous_run_id"] == first

    code, out = run(["runs", "list", "--json"], home)
    assert code == 0 and [r["run_id"] for r in json.loads(out)][:2] == [second, first], out
    listing = tmp_path / "work.parquet"
    code, out = run(["runs", "show", second, "--out", str(listing)], home)
    assert code == 0, out
    work = pd.read_parquet(listing)
    assert work["rank"].tolist() == list(range(1, 51))
    assert set(work["state"]) <= {"new", "rank change", "unchanged"}
    assert work["reason_1"].notna().all()
    code, out = run(["changes", "--run", second, "--json"], home)
    assert code == 0, out
    changes = json.loads(out)
    assert changes["previous_run_id"] == first
    assert changes["counts"]["entered"] == (work["state"] == "new").sum()
    code, out = run(["runs", "show", "0000000000000000"], home)
    assert code == 2 and "no scoring run" in out

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("scoring")
    assert experiment is not None
    logged = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.params["run_id"] for r in logged) == sorted([first, second])


def test_retraining_reads_the_outcomes_recorded_through_the_service(home: Path) -> None:
    """Feedback loop: a case handler's recorded outcome becomes a label of the next run."""
    import datetime as dt

    from stratum_ml.serving.outcomes import OutcomeStore
    from stratum_ml.sources import load_sources
    from stratum_ml.store import open_store

    src = home / "sources"  # made by test_pipeline
    tables = load_sources(src)
    address = str(tables.addresses["address_id"].iloc[0])
    opened = open_store(f"sqlite:///{home / 'stratum.db'}")
    store = OutcomeStore(opened, tables.addresses["address_id"])
    store.record(
        address_id=address,
        inspected_at=dt.date(2026, 10, 20),
        reason="report",
        outcome="violation",
        violation_type="overcrowding",
        recorded_by="test-key",
        today=dt.date(2026, 11, 1),
    )
    opened.close()
    code, out = run(["train", "--sources", str(src)], home)
    assert code == 0, out
    assert "added 1 visit outcomes recorded through the service" in out
    code, out = run(["train", "--sources", str(src), "--no-feedback"], home)
    assert code == 0 and "added" not in out, out


def test_bad_inputs_give_clear_errors(home: Path, tmp_path: Path) -> None:
    code, out = run(
        [
            "features",
            "--sources",
            str(tmp_path / "nowhere"),
            "--as-of",
            "2026-06-01",
            "--out",
            str(tmp_path / "f.parquet"),
        ],
        home,
    )
    assert code != 0 and "nowhere" in out
    code, out = run(
        [
            "features",
            "--sources",
            str(tmp_path),
            "--as-of",
            "01-06-2026",
            "--out",
            str(tmp_path / "f.parquet"),
        ],
        home,
    )
    assert code == 2 and "YYYY-MM-DD" in out
    assert not (tmp_path / "f.parquet").exists()
    config = tmp_path / "run.yaml"
    config.write_text("lightgbm:\n  num_leaves: -3\n")
    code, out = run(["train", "--sources", str(tmp_path), "--config", str(config)], home)
    assert code == 2 and "num_leaves" in out
