"""``stratum runs list|show`` and ``changes`` on runs the library stored (fast).

``stratum run`` itself needs a registered champion: it is tested end to end in
``test_cli_pipeline.py`` (slow); its date guard in ``test_dates.py``.
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
from stratum_ml.store import open_store
from stratum_ml.synthetic.generate import Municipality
from tests.runs.conftest import FIRST, SECOND, run_model, runs_town  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory,
    runs_town: Municipality,  # noqa: F811
    run_model: RunModel,  # noqa: F811
) -> tuple[Path, str, str]:
    """A home with two stored runs a month apart: (home, first run id, second run id)."""
    folder = tmp_path_factory.mktemp("runs-cli")
    settings = Settings(home=folder, mlflow_uri=None)
    store = open_store(settings.store_url)
    try:
        ids = [
            create_run(runs_town.sources, day, run_model, store, settings=settings, top_k=50).run_id
            for day in (FIRST, SECOND)
        ]
    finally:
        store.close()
    return folder, ids[0], ids[1]


def run(args: list[str], home: Path) -> tuple[int, str]:
    env = {"STRATUM_HOME": str(home), "STRATUM_MLFLOW_URI": "", "STRATUM_DATABASE_URL": ""}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def test_runs_list(home: tuple[Path, str, str]) -> None:
    folder, first, second = home
    code, out = run(["runs", "list", "--json"], folder)
    assert code == 0, out
    listed = json.loads(out)
    assert [r["run_id"] for r in listed] == [second, first]
    assert listed[0]["previous_run_id"] == first and listed[0]["top_k"] == 50
    code, out = run(["runs", "list"], folder)
    assert code == 0 and second in out and "stratum-risk v1" in out, out


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_runs_show_writes_the_work_list(
    home: tuple[Path, str, str], tmp_path: Path, suffix: str
) -> None:
    folder, _, second = home
    target = tmp_path / f"list{suffix}"
    code, out = run(["runs", "show", second, "--out", str(target), "--language", "nl"], folder)
    assert code == 0, out
    frame = (
        pd.read_csv(target, dtype={"address_id": str})
        if suffix == ".csv"
        else pd.read_parquet(target)
    )
    assert {"rank", "address_id", "probability", "state", "reason_1"} <= set(frame.columns)
    assert frame["rank"].tolist() == list(range(1, 51))
    assert {"new", "rank change"} <= set(frame["state"])
    assert "verhoogt" in " ".join(frame["reason_1"])  # Dutch reason texts


def test_runs_show_prints_the_work_list(home: tuple[Path, str, str]) -> None:
    folder, first, _ = home
    code, out = run(["runs", "show", first], folder)
    assert code == 0 and "new" in out and first in out, out


def test_changes_json(home: tuple[Path, str, str]) -> None:
    folder, first, second = home
    code, out = run(["changes", "--run", second, "--json"], folder)
    assert code == 0, out
    payload = json.loads(out)
    assert payload["previous_run_id"] == first and payload["counts"]["entered"] > 0
    entered = [c for c in payload["changes"] if c["change"] == "entered"]
    assert len(entered) == payload["counts"]["entered"]
    assert sum(d["entered"] for d in payload["by_district"].values()) == len(entered)
    code, out = run(["changes", "--run", first], folder)
    assert code == 0 and "no changes" in out, out


@pytest.mark.parametrize(
    "args", [["runs", "show", "nope"], ["changes", "--run", "nope"]], ids=["show", "changes"]
)
def test_an_unknown_run_exits_2(home: tuple[Path, str, str], args: list[str]) -> None:
    code, out = run(args, home[0])
    assert code == 2 and "no scoring run 'nope'" in out, out


def test_runs_show_while_paused_is_the_fallback_and_says_so(
    home: tuple[Path, str, str], tmp_path: Path
) -> None:
    from stratum_ml.runs import fallback_list, work_list
    from stratum_ml.store.switch import Actor, pause, resume

    folder, _, second = home
    store = open_store(Settings(home=folder).store_url)
    admin = Actor("cli", "tester")
    try:
        model_list = work_list(store, second)
        pause(store, "drift under investigation, see the ticket", admin)
        out_file = tmp_path / "paused.csv"
        code, out = run(["runs", "show", second, "--out", str(out_file)], folder)
        assert code == 0, out
        flat = " ".join(out.split())
        assert "The model is paused since" in flat and "fallback ranking" in flat, out
        shown = pd.read_csv(out_file, dtype={"address_id": str})
        expected = fallback_list(store, second)
        assert shown["address_id"].tolist() == expected["address_id"].tolist()
        assert shown["rank"].tolist() == list(range(1, len(model_list) + 1))
        assert "probability" not in shown.columns and "reason_1" not in shown.columns
        assert shown["address_id"].tolist() != model_list["address_id"].tolist()
        resume(store, admin)
        code, out = run(["runs", "show", second, "--out", str(out_file)], folder)
        assert code == 0 and "The model is paused" not in " ".join(out.split()), out
        again = pd.read_csv(out_file, dtype={"address_id": str})
        assert again["address_id"].tolist() == model_list["address_id"].tolist()
    finally:
        store.close()
