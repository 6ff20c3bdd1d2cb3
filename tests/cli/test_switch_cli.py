"""``stratum pause`` and ``stratum resume``: the switch and its audit records (both databases)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.serving.audit import read_last, verify_log
from stratum_ml.store import open_store
from stratum_ml.store.switch import current_pause

REASON = "the October drift check flagged water readings"


def run(args: list[str], home: Path, url: str) -> tuple[int, str]:
    env = {"STRATUM_HOME": str(home), "STRATUM_DATABASE_URL": url, "STRATUM_AUDIT_LOG": ""}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def paused_since(url: str) -> object:
    store = open_store(url)
    try:
        return current_pause(store)
    finally:
        store.close()


def test_pause_and_resume_are_stored_and_audited(tmp_path: Path, store_url: str) -> None:
    code, out = run(["pause", "--reason", REASON, "--json"], tmp_path, store_url)
    assert code == 0, out
    answer = json.loads(out)
    user = getpass.getuser()
    assert answer["changed"] and answer["paused"] and answer["reason"] == REASON
    assert answer["by"] == f"OS user {user} (command line)"
    state = paused_since(store_url)
    assert state is not None
    # again: nothing changes, nothing is audited twice
    code, out = run(["pause", "--reason", "another reason for it"], tmp_path, store_url)
    assert code == 0 and "stays paused" in out and REASON in out, out
    code, out = run(["resume", "--reason", "the check was rerun and passed"], tmp_path, store_url)
    assert code == 0 and "resumed by OS user" in out, out
    assert paused_since(store_url) is None
    code, out = run(["resume", "--json"], tmp_path, store_url)
    assert code == 0 and json.loads(out)["changed"] is False, out

    log = tmp_path / "audit.jsonl"
    assert verify_log(log).ok
    records = read_last(log, 10)
    assert [(r["endpoint"], r["role"], r["key_id"], r["status"]) for r in records] == [
        ("pause", "admin", None, 200),
        ("resume", "admin", None, 200),
    ]
    assert records[0]["detail"] == f"command line, OS user {user} (command line): {REASON}"


def test_a_bad_reason_is_refused_and_nothing_changes(tmp_path: Path, store_url: str) -> None:
    code, out = run(["pause", "--reason", "too short"], tmp_path, store_url)
    assert code == 2 and "error:" in out and "10 to 500 characters" in out, out
    code, out = run(["pause", "--reason", "BSN 123456782 was reported"], tmp_path, store_url)
    assert code == 2 and "9-digit number" in out and "123456782" not in out, out
    code, out = run(["pause"], tmp_path, store_url)
    assert code == 2 and "--reason" in out, out
    assert paused_since(store_url) is None
    assert not (tmp_path / "audit.jsonl").exists() or read_last(tmp_path / "audit.jsonl", 5) == []


def test_a_damaged_audit_log_changes_nothing(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "audit.jsonl").write_text('{"seq": 1, "hash": "x"', "utf-8")  # no line end
    code, out = run(["pause", "--reason", REASON], tmp_path, store_url)
    assert code == 1 and "nothing was changed" in out, out
    assert paused_since(store_url) is None
