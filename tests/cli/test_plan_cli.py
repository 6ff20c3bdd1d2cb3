"""``stratum plan``, ``plan decline``, ``feedback import`` and ``evaluate --run`` on a stored run.

``stratum run --capacity`` itself needs a registered champion: it is tested end to
end in ``test_visits_by_design.py`` (slow).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.config import Settings
from stratum_ml.runs import RunModel, create_run
from stratum_ml.runs.plan import create_plan
from stratum_ml.store import open_store
from stratum_ml.synthetic.generate import Municipality
from stratum_ml.synthetic.truth import truth_at
from tests.runs.conftest import SECOND, run_model, runs_town  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory,
    runs_town: Municipality,  # noqa: F811
    run_model: RunModel,  # noqa: F811
) -> tuple[Path, str]:
    """A home with one stored run and its plan of 300 visits (share 0.2)."""
    folder = tmp_path_factory.mktemp("plan-cli")
    settings = Settings(home=folder, mlflow_uri=None)
    store = open_store(settings.store_url)
    try:
        run_id = create_run(runs_town.sources, SECOND, run_model, store, settings=settings).run_id
        create_plan(store, run_id, 300, 0.2, created_by="cli:test")
    finally:
        store.close()
    return folder, run_id


def run(args: list[str], home: Path) -> tuple[int, str]:
    env = {"STRATUM_HOME": str(home), "STRATUM_MLFLOW_URI": "", "STRATUM_DATABASE_URL": ""}
    result = CliRunner().invoke(app, args, env=env)
    if "--json" in args:
        return result.exit_code, result.output
    return result.exit_code, " ".join(result.output.split())  # rich wraps lines


def test_the_visitors_export_hides_the_pick_and_the_analyst_s_shows_it(
    home: tuple[Path, str], tmp_path: Path
) -> None:
    folder, run_id = home
    code, out = run(["plan", "--run", run_id, "--out", str(tmp_path / "v.csv")], folder)
    assert code == 0 and "visitors' plan" in out, out
    visitors = pd.read_csv(tmp_path / "v.csv", dtype=str)
    assert not {"rank", "pick", "inclusion_probability", "stratum"} & set(visitors.columns)
    assert len(visitors) == 300
    code, out = run(
        ["plan", "--run", run_id, "--analyst", "--out", str(tmp_path / "a.csv")], folder
    )
    assert code == 0, out
    analyst = pd.read_csv(tmp_path / "a.csv", dtype={"address_id": str})
    assert {"address_id", "rank", "pick", "inclusion_probability"} <= set(analyst.columns)
    assert analyst["pick"].value_counts().to_dict() == {"top": 240, "exploration": 60}
    assert set(analyst["address_id"]) == set(visitors["address_id"])
    code, out = run(["plan", "--run", run_id, "--json"], folder)
    assert code == 0 and "exploration" not in out and "n_top" not in out, out


def test_explain_prints_what_a_share_buys(home: tuple[Path, str]) -> None:
    folder, run_id = home
    code, out = run(["plan", "--explain", "--run", run_id, "--json"], folder)
    assert code == 0, out
    explained = json.loads(out)
    assert explained["capacity"] == 300 and explained["exploration_share"] == 0.2
    assert [p["k"] for p in explained["precision"]] == [100, 250, 500]
    code, out = run(
        ["plan", "--explain", "--capacity", "500", "--population", "60000", "--exploration", "0.1"],
        folder,
    )
    assert code == 0 and "451-500" in out and "± per year" in out, out
    code, out = run(["plan", "--explain", "--capacity", "500"], folder)
    assert code == 2 and "--population" in out
    assert explained["challenger_share"] == 0 and explained["challenger_precision"] == []
    code, out = run(
        ["plan", "--explain", "--capacity", "500", "--population", "60000"]
        + ["--challenger-share", "0.1", "--json"],
        folder,
    )
    assert code == 0, out
    explained = json.loads(out)
    assert [p["k"] for p in explained["challenger_precision"]] == [100, 250, 500]
    assert explained["bands"][-1]["band"] == "challenger 1-500"
    assert explained["bands"][-1]["per_run"] == 50
    assert "share nothing" in explained["challenger_scenario"]
    code, out = run(
        ["plan", "--explain", "--capacity", "500", "--population", "60000"]
        + ["--challenger-share", "0.1"],
        folder,
    )
    assert code == 0 and "challenger picks per year in its top k" in out, out
    # a run without a shadow cannot be explained with its own challenger ranks: a scenario
    code, out = run(
        ["plan", "--explain", "--run", run_id, "--challenger-share", "0.1", "--json"], folder
    )
    assert code == 0 and "share nothing" in json.loads(out)["challenger_scenario"], out


def test_decline_and_feedback_import_then_evaluate_the_run(
    home: tuple[Path, str],
    tmp_path: Path,
    runs_town: Municipality,  # noqa: F811
) -> None:
    folder, run_id = home
    analyst = tmp_path / "a.csv"
    assert run(["plan", "--run", run_id, "--analyst", "--out", str(analyst)], folder)[0] == 0
    picks = pd.read_csv(analyst, dtype={"address_id": str})
    declined = picks.loc[picks["pick"] == "exploration", "address_id"].iloc[0]
    code, out = run(
        ["plan", "decline", "--run", run_id, "--address", declined, "--reason", "other"], folder
    )
    assert code == 1 and "needs a note" in out, out
    code, out = run(
        ["plan", "decline", "--run", run_id, "--address", declined, "--reason", "safety"], folder
    )
    assert code == 0 and "non-response" in out, out

    visited = picks.loc[picks["address_id"] != declined]
    truth = truth_at(runs_town.truth, visited["address_id"], SECOND.isoformat())
    rows = pd.DataFrame(
        {
            "inspection_id": "",
            "address_id": visited["address_id"].to_numpy(),
            "inspected_at": "2026-10-08",
            "reason": "risk_model",
            "outcome": ["violation" if t else "no_violation" for t in truth],
            "violation_type": ["overcrowding" if t else "" for t in truth],
            "run_id": run_id,
        }
    )
    bad = rows.copy()
    bad.loc[0, "reason"] = "random_sample"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code, out = run(["feedback", "import", str(tmp_path / "bad.csv")], folder)
    assert code == 1 and "random_sample' can no longer be typed in" in out, out
    assert "nothing was stored" in out
    rows.to_csv(tmp_path / "visits.csv", index=False)
    code, out = run(["feedback", "import", str(tmp_path / "visits.csv")], folder)
    assert code == 0 and "stored 299 visit outcomes" in out and "299 answer" in out, out

    code, out = run(["evaluate", "--run", run_id, "--json"], folder)
    assert code == 0, out
    result = json.loads(out)
    assert result["n_visits"] == 299 and result["n_nonresponse"] == 1
    rows_by_k = {r["k"]: r for r in result["precision"]}
    assert set(rows_by_k) == {50, 100, 250, 500}
    for k, row in rows_by_k.items():
        assert {"k", "estimate", "low", "high", "method", "n_visits"} <= set(row)
        assert row["low"] <= row["high"], (k, row)
    assert rows_by_k[100]["method"] == "horvitz_thompson"  # inside the top picks: counted
    assert rows_by_k[500]["method"] != "horvitz_thompson"  # one pick declined: bounds
    code, out = run(["evaluate", "--run", run_id], folder)
    assert code == 0 and "precision@k: design-based" in out and "--sources" in out, out
    assert "these estimate what visits find, not the truth" in " ".join(out.split())
    assert any("what visits find" in note for note in result["notes"])
    code, out = run(["evaluate", "--run", "0000000000000000"], folder)
    assert code == 2 and "no scoring run" in out
    code, out = run(["evaluate"], folder)
    assert code == 2 and "--sources" in out
