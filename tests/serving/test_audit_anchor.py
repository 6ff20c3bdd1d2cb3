"""The audit log's anchor (issue 11, item 5) and intents (issue 8: no row without a record).

The three tamperings a chain alone cannot see: the last line removed cleanly, the
log emptied, and the log rewritten with every later hash recomputed. Each is
detected by ``stratum audit verify`` once a signed checkpoint of the head is kept
outside the log, in the operational store or in MLflow.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.config import Settings
from stratum_ml.runs.tracking import finish_scoring_run, start_scoring_run
from stratum_ml.serving.audit import INTENT_STATUS, AuditLog, read_last, record_hash
from stratum_ml.serving.audit_anchor import (
    ANCHOR_PURPOSE,
    MLFLOW_TAG,
    PAUSE_EVENT_PREFIX,
    DailyAnchor,
    mlflow_checkpoints,
    run_checkpointer,
    stored_checkpoints,
    take_checkpoint,
    verify_anchored,
)
from stratum_ml.serving.decisions import DecisionStore
from stratum_ml.serving.outcomes import OutcomeStore
from stratum_ml.signing import SigningKeyError, load_signing_key
from stratum_ml.store import Store, open_store
from stratum_ml.store.switch import Actor, SwitchChange, current_pause, pause
from stratum_ml.store.tables import AuditCheckpointRow, DecisionRow

ADDRESS = "0479010000000001"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state folder with its keys kept elsewhere, as the README advises."""
    home = tmp_path / "home"
    monkeypatch.setenv("STRATUM_HOME", str(home))
    monkeypatch.setenv("STRATUM_SIGNING_KEYS_DIR", str(tmp_path / "elsewhere" / "keys"))
    monkeypatch.delenv("STRATUM_AUDIT_LOG", raising=False)
    monkeypatch.delenv("STRATUM_DATABASE_URL", raising=False)
    monkeypatch.delenv("STRATUM_MLFLOW_URI", raising=False)
    return home


@pytest.fixture
def home_store(home: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{home / 'stratum.db'}")
    try:
        yield opened
    finally:
        opened.close()


def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(
            key_id="0123456789abcdef",
            role="analyst",
            endpoint="score",
            address_ids=[f"04790100000{i:05d}"],
            model_version="3",
            status=200,
        )


@pytest.fixture
def anchored(home: Path, home_store: Store) -> Path:
    """A log of 20 records with a checkpoint at 10 (start) and at 20 (stop)."""
    log = AuditLog(home / "audit.jsonl")
    fill(log, 10)
    take_checkpoint(log, home_store, "start")
    fill(log, 10)
    take_checkpoint(log, home_store, "stop")
    return log.path


def verify_cli(path: Path | None = None) -> Any:
    args = ["audit", "verify"] + ([str(path)] if path is not None else [])
    return CliRunner().invoke(app, args, env={"COLUMNS": "300"})


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rechain(records: list[dict[str, Any]]) -> bytes:
    """The records with every hash recomputed from the first one on: a clean rewrite."""
    prev = "0" * 64
    out = []
    for i, record in enumerate(records, start=1):
        record = {**record, "seq": i, "prev_hash": prev}
        record["hash"] = record_hash(record)
        prev = record["hash"]
        out.append((json.dumps(record, separators=(",", ":")) + "\n").encode("ascii"))
    return b"".join(out)


def test_an_untouched_log_agrees_with_its_checkpoints(anchored: Path) -> None:
    result = verify_cli()
    assert result.exit_code == 0, result.output
    assert "ok: 20 records" in result.stdout
    assert "2 signed checkpoint(s)" in result.stdout and "at record 20" in result.stdout


def test_the_last_line_removed_cleanly_is_detected(anchored: Path) -> None:
    anchored.write_bytes(b"".join(lines(anchored)[:-1]))
    result = verify_cli()
    assert result.exit_code == 1, result.output
    assert "TAMPERED" in result.stdout and "removed from its end" in result.stdout
    assert "19 intact record(s)" in result.stdout


def test_an_emptied_log_is_detected(anchored: Path) -> None:
    anchored.write_bytes(b"")
    result = verify_cli()
    assert result.exit_code == 1, result.output
    assert "the log holds 0 record(s)" in result.stdout
    anchored.unlink()  # a removed log too, while its checkpoints are kept
    gone = verify_cli()
    assert gone.exit_code == 1 and "no audit log at" in gone.stdout


def test_a_log_rewritten_with_its_hashes_recomputed_is_detected(anchored: Path) -> None:
    records = [json.loads(line) for line in lines(anchored)]
    records[4]["address_ids"] = ["0479010000099999"]  # change record 5 ...
    anchored.write_bytes(rechain(records))  # ... and recompute every later hash
    assert verify_cli(anchored).stdout.count("TAMPERED") >= 1
    result = verify_cli()
    assert result.exit_code == 1
    assert "record 10 is not the one" in result.stdout
    assert "record 20 is not the one" in result.stdout


def test_records_after_the_last_checkpoint_are_not_covered(anchored: Path) -> None:
    log = AuditLog(anchored)
    fill(log, 3)
    records = [json.loads(line) for line in lines(anchored)]
    assert verify_cli().exit_code == 0
    # dropping the records after the last checkpoint: the README says so, not detectable
    anchored.write_bytes(rechain(records[:20]))
    assert verify_cli().exit_code == 0


def test_a_forged_or_edited_checkpoint_does_not_verify(anchored: Path, home_store: Store) -> None:
    anchored.write_bytes(b"".join(lines(anchored)[:-1]))
    with home_store.transaction() as session:  # cover the cut by moving the checkpoint back
        session.execute(
            update(AuditCheckpointRow).where(AuditCheckpointRow.head_seq == 20).values(head_seq=19)
        )
    result = verify_cli()
    assert result.exit_code == 1
    assert "does not verify with the audit-anchor key" in result.stdout


def test_mlflow_keeps_the_checkpoints_of_scoring_runs(
    anchored: Path, home: Path, home_store: Store
) -> None:
    settings = Settings(home=home)
    run_id = start_scoring_run(settings, "test run", {})
    name, value = run_checkpointer(AuditLog(anchored), home_store)()
    finish_scoring_run(settings, run_id, params={}, metrics={}, drift_json=None, tags={name: value})
    assert name == MLFLOW_TAG
    (found,) = mlflow_checkpoints(settings, anchored)
    assert (found.head_seq, found.reason) == (20, "run")
    # whoever deletes the checkpoints from the store still meets the one in MLflow
    with home_store.transaction() as session:
        session.execute(delete(AuditCheckpointRow))
    anchored.write_bytes(b"".join(lines(anchored)[:-2]))
    result = verify_cli()
    assert result.exit_code == 1, result.output
    assert "(run)" in result.stdout and "removed from its end" in result.stdout


def test_the_key_is_private_and_outside_the_log_folder(anchored: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "elsewhere" / "keys" / f"{ANCHOR_PURPOSE}.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert anchored.parent not in key_file.parents
    os.chmod(key_file, 0o640)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_signing_key(ANCHOR_PURPOSE)
    os.chmod(key_file, 0o600)
    key_file.unlink()  # another key cannot vouch for the stored checkpoints
    load_signing_key(ANCHOR_PURPOSE)
    result = verify_cli()
    assert result.exit_code == 1 and "does not verify" in result.stdout


def test_the_service_anchor_checkpoints_at_start_periodically_and_at_stop(
    home: Path, home_store: Store
) -> None:
    log = AuditLog(home / "audit.jsonl")
    fill(log, 2)
    anchor = DailyAnchor(log, home_store, interval_s=0.05)
    anchor.start()
    fill(log, 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(c.reason == "daily" for c in stored_checkpoints(home_store, log.path)):
            break
        time.sleep(0.05)
    anchor.stop()
    reasons = [c.reason for c in stored_checkpoints(home_store, log.path)]
    assert reasons[0] == "start" and reasons[-1] == "stop" and "daily" in reasons
    assert stored_checkpoints(home_store, log.path)[-1].head_seq == 3


# --------------------------------------------------------------------------- intents


class CrashAfterIntent(AuditLog):
    """The process dies right after the intent is durable, before the commit."""

    def append_intent(self, **fields: Any) -> Any:
        super().append_intent(**fields)
        raise SystemExit("killed between the intent and the commit")


def decide(decisions: DecisionStore) -> Any:
    return decisions.record(
        address_id=ADDRESS,
        decision="pass_on_for_visit",
        reason="signals_several_sources",
        note="water use four times the usual",
        decided_by="0123456789abcdef",
        role="analyst",
        model_version="3",
        scoring_date=dt.date(2026, 11, 1),
        rank=1,
        probability=0.5,
    )


def test_a_stored_decision_has_its_audit_record_before_the_commit(
    store: Store, tmp_path: Path
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    stored = decide(DecisionStore(store, log))
    # the service then fails to write the answer's record: the row still has one
    (intent,) = read_last(log.path, 5)
    assert (intent["status"], intent["detail"]) == (INTENT_STATUS, f"intent {stored.decision_id}")
    assert (intent["endpoint"], intent["address_ids"]) == ("decision", [ADDRESS])
    report = verify_anchored(log.path, [], key=b"", store=store)
    assert report.ok and report.not_committed == []


def test_a_crash_between_intent_and_commit_stores_nothing_and_says_so(
    store: Store, tmp_path: Path
) -> None:
    log = CrashAfterIntent(tmp_path / "audit.jsonl")
    with pytest.raises(SystemExit):
        decide(DecisionStore(store, log))
    with store.transaction() as session:
        assert session.query(DecisionRow).count() == 0
    report = verify_anchored(log.path, [], key=b"", store=store)
    assert report.ok  # not tampering
    (line,) = report.not_committed
    assert "decision row dec-" in line and "not committed" in line


def test_an_audit_log_that_cannot_be_written_stores_no_row(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    path.write_bytes(b'{"seq": 1')  # a damaged tail: the log refuses to continue
    with pytest.raises(Exception, match="incomplete"):
        decide(DecisionStore(store, log))
    with store.transaction() as session:
        assert session.query(DecisionRow).count() == 0


def test_a_visit_outcome_is_announced_before_its_commit(store: Store, tmp_path: Path) -> None:
    log = CrashAfterIntent(tmp_path / "audit.jsonl")
    outcomes = OutcomeStore(store, [ADDRESS], log)
    visit = {
        "address_id": ADDRESS,
        "inspected_at": dt.date(2026, 10, 1),
        "reason": "risk_model",
        "outcome": "no_violation",
        "violation_type": None,
        "recorded_by": "0123456789abcdef",
    }
    with pytest.raises(SystemExit):
        outcomes.record(**visit)
    report = verify_anchored(log.path, [], key=b"", store=store)
    assert "feedback row svc-" in report.not_committed[0]
    stored = OutcomeStore(store, [ADDRESS], AuditLog(log.path)).record(**visit)
    intent = read_last(log.path, 1)[0]
    assert intent["detail"] == f"intent {stored.inspection_id}"
    assert len(verify_anchored(log.path, [], key=b"", store=store).not_committed) == 1


def test_a_pause_event_is_announced_and_checked_like_the_rows(store: Store, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    by = Actor("api", "0123456789abcdef", "admin", "beheer")

    def announce(change: SwitchChange) -> None:
        log.append_intent(
            key_id=by.name,
            role="admin",
            endpoint="pause",
            address_ids=[],
            model_version="3",
            row_id=f"{PAUSE_EVENT_PREFIX}{change.event}",
        )

    def crash(change: SwitchChange) -> None:
        announce(change)
        raise SystemExit("killed before the commit")

    with pytest.raises(SystemExit):
        pause(store, "the model misbehaves on district 3", by, on_change=crash)
    assert current_pause(store) is None
    pause(store, "the model misbehaves on district 3, again", by, on_change=announce)
    (line,) = verify_anchored(log.path, [], key=b"", store=store).not_committed
    assert "pause row pause-event-" in line
