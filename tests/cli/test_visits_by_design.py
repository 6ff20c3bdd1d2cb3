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
from typing import Any

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
    # a challenger (another seed), shadow-scored on the run below
    challenger_config = tmp_path / "challenger.yaml"
    challenger_config.write_text("evaluate_mitigations: false\nseed: 1\n", "utf-8")
    code, out = run(["train", "--sources", str(src), "--config", str(challenger_config)], home)
    assert code == 0, out

    # run with a plan: capacity 500, the run config's exploration share (0.10) and, the
    # challenger being shadow-scored, its challenger share (0.05)
    code, out = run(
        ["run", "--sources", str(src), "--as-of", AS_OF, "--top", "500", "--capacity", "500"]
        + ["--json"],
        home,
    )
    assert code == 0, out
    summary = json.loads(out)
    run_id, plan = summary["run_id"], summary["plan"]
    assert plan["capacity"] == 500 and plan["n_top"] == 425 and plan["n_exploration"] == 50
    assert plan["n_challenger"] == 25 and plan["challenger"] == "stratum-risk v2"

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
    rows = {
        r["k"]: r for r in result["precision"] if r["run_id"] == run_id and r["scored_as"] == "run"
    }
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

    _check_design_based_comparison(home, run_id, ranked, truth, result)


def _check_design_based_comparison(
    home: Path, run_id: str, ranked: pd.DataFrame, truth: pd.DataFrame, result: dict[str, Any]
) -> None:
    """``compare`` and ``promote`` pair both rankings on the plan's visits (Horvitz-Thompson).

    The challenger was shadow-scored on the run; the paired difference's interval
    holds the true difference of the two lists' precision on the run's date.
    """
    from stratum_ml.config import Settings
    from stratum_ml.runs.read import shadow_ranks
    from stratum_ml.store import open_store

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STRATUM_HOME", str(home))
        mp.setenv("STRATUM_DATABASE_URL", "")
        settings = Settings()
    store = open_store(settings.store_url, legacy_home=settings.home)
    try:
        shadow = shadow_ranks(store, run_id).sort_values("rank")
    finally:
        store.close()
    assert len(shadow) >= len(ranked) and set(shadow["model_version"]) == {"2"}
    # evaluate --run lists the shadow-scored challenger beside the run's own list, estimated
    # from the same visits (its top picks were drawn into the plan's challenger stratum)
    assert {r["model_version"] for r in result["precision"]} == {
        "stratum-risk v1",
        "stratum-risk v2",
    }
    challenger_rows = {r["k"]: r for r in result["precision"] if r["scored_as"] == "shadow"}
    for k in (100, 500):
        row = challenger_rows[k]
        true = float(truth_at(truth, shadow.index[:k], AS_OF).mean())
        assert row["model_version"] == "stratum-risk v2" and row["run_id"] == run_id
        assert row["method"] != "not_estimable" and row["low"] <= true <= row["high"], (k, row)

    code, out = run(["compare", "champion", "challenger", "--json"], home)
    assert code == 0, out
    result = json.loads(out)
    assert result["method"].startswith("design-based (Horvitz-Thompson)"), result["method"]
    assert result["design"]["plan_run_id"] == run_id and result["design"]["n_visits"] == 497
    rows = {r["k"]: r for r in result["design"]["rows"]}
    assert {100, 500} <= set(rows)
    for k in (100, 500):
        champion_true = float(truth_at(truth, ranked["address_id"][:k], AS_OF).mean())
        challenger_true = float(truth_at(truth, shadow.index[:k], AS_OF).mean())
        diff = rows[k]["difference"]
        true_diff = challenger_true - champion_true  # floats: 0.51 - 0.57 != -0.06 exactly
        assert diff["low"] - 1e-9 <= true_diff <= diff["high"] + 1e-9, (k, true_diff, diff)
        assert rows[k]["champion"]["low"] <= champion_true <= rows[k]["champion"]["high"]
    code, out = run(["compare", "champion", "challenger"], home)
    assert code == 0 and "method: design-based (Horvitz-Thompson)" in " ".join(out.split())

    code, out = run(["promote"], home)
    said = " ".join(out.split())
    assert code in (0, 1), out
    assert "(method: design-based (Horvitz-Thompson)" in said, said
    assert f"497 visits of the plan of run {run_id}" in said, said
