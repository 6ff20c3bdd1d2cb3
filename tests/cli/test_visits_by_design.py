"""Done when (issue 9, visits by design): one cycle run -> plan -> visits answered from the truth
-> ``feedback import`` -> ``evaluate --run R --json`` gives, for k = 100 and 500, intervals that
contain the true precision of the run's list (or "not estimable" with bounds that do).

The visits are answered with the truth label of the run's date directly (no detection error):
the design estimates what visits find, so an inspector who misses violations would make the
estimate that of the detected violations, which is a measurement question, not a sampling one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.synthetic.truth import read_truth, truth_at

pytestmark = pytest.mark.slow

AS_OF = "2026-10-01"


def run(args: list[str], home: Path) -> tuple[int, str]:
    env = {"STRATUM_HOME": str(home), "STRATUM_MLFLOW_URI": "", "STRATUM_DATABASE_URL": ""}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def test_one_cycle_of_visits_by_design_gives_intervals_that_hold_the_truth(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    src, truth_file = tmp_path / "sources", tmp_path / "truth.parquet"
    code, out = run(
        ["generate", "--out", str(src), "--truth", str(truth_file), "--addresses", "8000"]
        + ["--seed", "5"],
        home,
    )
    assert code == 0, out
    config = tmp_path / "run.yaml"
    config.write_text("evaluate_mitigations: false\n", "utf-8")
    code, out = run(["train", "--sources", str(src), "--config", str(config)], home)
    assert code == 0, out
    code, out = run(["promote"], home)
    assert code == 0 and "PROMOTED" in out, out

    # run with a plan: capacity 500, the run config's exploration share (0.10)
    code, out = run(
        ["run", "--sources", str(src), "--as-of", AS_OF, "--top", "500", "--capacity", "500"]
        + ["--json"],
        home,
    )
    assert code == 0, out
    summary = json.loads(out)
    run_id, plan = summary["run_id"], summary["plan"]
    assert plan["capacity"] == 500 and plan["n_top"] == 450 and plan["n_exploration"] == 50

    analyst_file, visitors_file = tmp_path / "analyst.csv", tmp_path / "visitors.csv"
    code, out = run(["plan", "--run", run_id, "--analyst", "--out", str(analyst_file)], home)
    assert code == 0, out
    code, out = run(["plan", "--run", run_id, "--out", str(visitors_file)], home)
    assert code == 0, out
    picks = pd.read_csv(analyst_file, dtype={"address_id": str})
    visitors = pd.read_csv(visitors_file, dtype={"address_id": str})
    assert "pick" not in visitors.columns and set(visitors["address_id"]) == set(
        picks["address_id"]
    )

    # one exploration pick declined, two not visited: non-response
    exploration = picks.loc[picks["pick"] == "exploration", "address_id"].tolist()
    code, out = run(
        ["plan", "decline", "--run", run_id, "--address", exploration[0], "--reason", "safety"],
        home,
    )
    assert code == 0, out
    visited = picks.loc[~picks["address_id"].isin(exploration[:3])]
    truth = read_truth(truth_file)
    found = truth_at(truth, visited["address_id"], AS_OF)
    pd.DataFrame(
        {
            "inspection_id": "",
            "address_id": visited["address_id"].to_numpy(),
            "inspected_at": "2026-10-20",
            "reason": "risk_model",
            "outcome": ["violation" if f else "no_violation" for f in found],
            "violation_type": ["overcrowding" if f else "" for f in found],
            "run_id": run_id,
        }
    ).to_csv(tmp_path / "visits.csv", index=False)
    code, out = run(["feedback", "import", str(tmp_path / "visits.csv")], home)
    assert code == 0 and "stored 497 visit outcomes" in " ".join(out.split()), out

    code, out = run(["evaluate", "--run", run_id, "--json"], home)
    assert code == 0, out
    result = json.loads(out)
    assert result["n_visits"] == 497 and result["n_nonresponse"] == 3

    work = tmp_path / "work.csv"
    assert run(["runs", "show", run_id, "--out", str(work)], home)[0] == 0
    ranked = pd.read_csv(work, dtype={"address_id": str}).sort_values("rank")
    labels = truth_at(truth, ranked["address_id"], AS_OF)
    rows = {r["k"]: r for r in result["precision"] if r["run_id"] == run_id}
    for k in (100, 500):
        true = float(labels[:k].mean())
        row = rows[k]
        assert row["low"] <= true <= row["high"], (k, true, row)
        assert row["n_visits"] > 0 and row["method"] in (
            "horvitz_thompson",
            "horvitz_thompson_with_nonresponse_bounds",
            "not_estimable",
        )
    assert rows[100]["method"] == "horvitz_thompson" and rows[100]["estimate"] == pytest.approx(
        float(labels[:100].mean())
    )  # inside the top picks: counted, not estimated
    assert rows[500]["high"] - rows[500]["low"] < 0.25  # informative, not [0, 1]
