"""``stratum db upgrade|current`` and ``stratum decisions list`` (fast, SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.serving.decisions import DecisionStore
from stratum_ml.store import open_store
from stratum_ml.store.legacy_csv import LEGACY_OUTCOMES

A = "0479010000000001"


def run(args: list[str], home: Path, url: str) -> tuple[int, str]:
    # wide enough that rich never wraps a message: a long temporary path must not split it
    env = {"STRATUM_HOME": str(home), "STRATUM_DATABASE_URL": url, "COLUMNS": "100000"}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def test_db_commands_migrate_and_report(tmp_path: Path, store_url: str) -> None:
    code, out = run(["db", "current"], tmp_path, store_url)
    assert code == 0 and "at revision none (this version migrates it to 0014)" in out, out
    code, out = run(["db", "upgrade"], tmp_path, store_url)
    assert code == 0 and "at revision 0014" in out, out
    code, out = run(["db", "current"], tmp_path, store_url)
    assert code == 0 and "at revision 0014 (up to date)" in out, out


def test_a_broken_store_is_one_error_line(tmp_path: Path) -> None:
    broken = tmp_path / LEGACY_OUTCOMES
    broken.parent.mkdir(parents=True)
    broken.write_text("a,b\n1,2\n", "utf-8")
    code, out = run(["decisions", "list"], tmp_path, f"sqlite:///{tmp_path / 's.db'}")
    (line,) = out.splitlines()
    assert code == 1 and line.startswith("error: ") and "not an outcomes store" in line, out
    code, out = run(["db", "current"], tmp_path, "mysql://u:pw@h/d")
    (line,) = out.splitlines()
    assert code == 1 and line.startswith("error: ") and "unsupported database" in line, out
    assert "pw" not in out, out


def test_decisions_list_per_address_as_json_and_table(tmp_path: Path, store_url: str) -> None:
    store = open_store(store_url)
    decisions = DecisionStore(store)
    common = {
        "decided_by": "0123456789abcdef",
        "role": "analyst",
        "key_name": "team north",
        "model_version": "3",
        "scoring_date": dt.date(2026, 11, 1),
        "rank": 4,
        "probability": 0.5,
    }
    first = decisions.record(
        address_id=A, decision="decline", reason="other", note="empty flat", **common
    )
    second = decisions.record(
        address_id=A,
        decision="pass_on_for_visit",
        reason="recent_reports",
        supersedes=first.decision_id,
        **common,
    )
    decisions.record(
        address_id="0479010000000002", decision="decline", reason="recent_reports", **common
    )
    store.close()
    code, out = run(["decisions", "list", "--address", A, "--json"], tmp_path, store_url)
    assert code == 0, out
    listed = json.loads(out)
    assert [d["decision_id"] for d in listed] == [first.decision_id, second.decision_id]
    assert [d["open"] for d in listed] == [False, True]
    assert listed[0]["superseded_by"] == second.decision_id
    assert listed[1]["key_name"] == "team north"
    code, out = run(["decisions", "list"], tmp_path, store_url)
    assert code == 0 and out.count("team north (analyst)") == 3, out
    assert f"superseded by {second.decision_id}" in out
    code, out = run(["decisions", "list", "--address", "0479019999999999"], tmp_path, store_url)
    assert code == 0 and "no decisions on address 0479019999999999" in out
