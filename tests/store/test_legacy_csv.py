"""The one-off import of the CSV stores an earlier version wrote (on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stratum_ml.serving.decisions import DecisionStore, read_decisions
from stratum_ml.serving.outcomes import read_outcomes
from stratum_ml.store import open_store
from stratum_ml.store.legacy_csv import (
    LEGACY_DECISIONS,
    LEGACY_OUTCOMES,
    LegacyStoreError,
    import_legacy_csv,
)

A, B = "0479010000000001", "0479010000000002"
DECISIONS_CSV = (
    "decision_id,address_id,decision,reason,decided_at,decided_by,model_version,scoring_date,"
    "rank_at_decision,probability_at_decision\n"
    f"dec-{'a' * 32},{A},pass_on_for_visit,two reports,2026-10-01T09:00:00+00:00,"
    "0123456789abcdef,3,2026-10-01,7,0.4321\n"
    f'dec-{"b" * 32},{B},decline,"second look, ""quoted"",\nand a new line",'
    "2026-10-02T09:00:00+00:00,0123456789abcdef,3,2026-10-01,12,0.25\n"
    f"dec-{'c' * 32},{A},decline,visited last month,2026-10-03T10:30:00+00:00,"
    "fedcba9876543210,4,2026-10-03,9,0.375\n"
)
OUTCOMES_CSV = (
    "inspection_id,address_id,inspected_at,reason,outcome,violation_type,recorded_at,recorded_by\n"
    f"svc-{'1' * 32},{A},2026-10-20,report,violation,overcrowding,"
    "2026-10-21T08:00:00+00:00,0123456789abcdef\n"
    f"svc-{'2' * 32},{B},2026-10-22,risk_model,no_violation,,"
    "2026-10-22T15:00:00+00:00,0123456789abcdef\n"
)


def _write_old_stores(home: Path, decisions: str = DECISIONS_CSV) -> tuple[Path, Path]:
    paths = home / LEGACY_DECISIONS, home / LEGACY_OUTCOMES
    for path, content in zip(paths, (decisions, OUTCOMES_CSV), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, "utf-8")
        path.with_name(path.name + ".lock").touch()
    return paths


def test_old_csv_stores_are_imported_on_first_open_and_renamed(
    store_url: str, tmp_path: Path
) -> None:
    decisions_file, outcomes_file = _write_old_stores(tmp_path)
    store = open_store(store_url, legacy_home=tmp_path)
    try:
        decisions = read_decisions(store)
        assert decisions["decision_id"].tolist() == [f"dec-{c * 32}" for c in "abc"]
        assert decisions["reason"].iloc[1] == "other"
        assert decisions["note"].iloc[1] == 'second look, "quoted",\nand a new line'
        assert decisions["decided_at"].iloc[2] == pd.Timestamp("2026-10-03T10:30:00Z")
        assert decisions["rank_at_decision"].tolist() == [7, 12, 9]
        assert decisions["probability_at_decision"].tolist() == [0.4321, 0.25, 0.375]
        # the two decisions on A are chained in file order: the later one is open
        chain = DecisionStore(store).history(A)
        assert [d.supersedes for d in chain] == [None, f"dec-{'a' * 32}"]
        assert [d.is_open for d in chain] == [False, True]
        assert chain[1].role is None and chain[1].key_name is None
        outcomes = read_outcomes(store, provenance=True)
        assert outcomes["inspection_id"].tolist() == [f"svc-{'1' * 32}", f"svc-{'2' * 32}"]
        assert outcomes["violation_type"].isna().tolist() == [False, True]
        assert outcomes["recorded_at"].iloc[0] == pd.Timestamp("2026-10-21T08:00:00Z")
        assert outcomes["recorded_by"].iloc[1] == "0123456789abcdef"
    finally:
        store.close()
    for path in (decisions_file, outcomes_file):
        assert not path.exists()
        assert path.with_name(path.name + ".migrated").exists()
        assert not path.with_name(path.name + ".lock").exists()
    # the next open finds nothing to import
    again = open_store(store_url, legacy_home=tmp_path)
    try:
        assert len(read_decisions(again)) == 3 and len(read_outcomes(again)) == 2
    finally:
        again.close()


def test_an_import_interrupted_after_its_commit_adds_nothing_twice(
    store_url: str, tmp_path: Path
) -> None:
    store = open_store(store_url, legacy_home=tmp_path)
    try:
        decisions_file, outcomes_file = _write_old_stores(tmp_path)
        first = import_legacy_csv(store, tmp_path)
        assert (first.decisions, first.outcomes, len(first.renamed)) == (3, 2, 2)
        _write_old_stores(tmp_path)  # as if the rename had not happened
        second = import_legacy_csv(store, tmp_path)
        assert (second.decisions, second.outcomes) == (0, 0)
        assert len(read_decisions(store)) == 3 and len(read_outcomes(store)) == 2
        assert decisions_file.with_name("decisions.csv.migrated").exists()
        assert len(list(outcomes_file.parent.glob("inspections.csv.migrated*"))) == 2
    finally:
        store.close()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda text: text.replace("pass_on_for_visit", "maybe"),
            "decision: not one of .* on lines 2",
        ),
        (lambda text: "a,b\n1,2\n", "not a decisions store"),
        (lambda text: text.replace("0.4321", "high"), "probability_at_decision: unreadable"),
    ],
)
def test_a_damaged_decisions_file_stops_the_import_and_stays(
    tmp_path: Path, damage: object, message: str
) -> None:
    assert callable(damage)
    decisions_file, outcomes_file = _write_old_stores(tmp_path, damage(DECISIONS_CSV))
    url = f"sqlite:///{tmp_path / 'stratum.db'}"
    with pytest.raises(LegacyStoreError, match=message):
        open_store(url, legacy_home=tmp_path)
    assert decisions_file.exists() and outcomes_file.exists()
    store = open_store(url)
    try:
        assert read_decisions(store).empty and read_outcomes(store).empty  # nothing imported
    finally:
        store.close()


def test_an_outcomes_file_edited_against_the_contract_is_refused(tmp_path: Path) -> None:
    edited = tmp_path / LEGACY_OUTCOMES
    edited.parent.mkdir(parents=True)
    edited.write_text(
        "inspection_id,address_id,inspected_at,reason,outcome,violation_type,"
        "recorded_at,recorded_by\n"
        "svc-1,0479010000000001,2026-10-01,report,no_violation,overcrowding,"
        "2026-10-02T09:00:00+00:00,0123456789abcdef\n",
        "utf-8",
    )
    with pytest.raises(LegacyStoreError, match="inspections.csv, column violation_type"):
        open_store(f"sqlite:///{tmp_path / 'stratum.db'}", legacy_home=tmp_path)
    assert edited.exists()


def test_rows_that_clash_with_the_database_leave_the_files(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    try:
        DecisionStore(store).record(
            address_id=A,
            decision="decline",
            reason="other",
            note="decided in the new store first",
            decided_by="0123456789abcdef",
            model_version="5",
            scoring_date=pd.Timestamp("2026-11-01").date(),
            rank=1,
            probability=0.5,
        )
        decisions_file, _ = _write_old_stores(tmp_path)
        with pytest.raises(LegacyStoreError, match="nothing was imported"):
            import_legacy_csv(store, tmp_path)
        assert decisions_file.exists()
        assert len(read_decisions(store)) == 1 and read_outcomes(store).empty
    finally:
        store.close()
