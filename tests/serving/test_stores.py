"""The decisions and outcomes stores on the operational store, on SQLite and PostgreSQL.

The rules of issue 8: a decision on an address with an open decision must name
the decision it supersedes (409 otherwise), retried writes with the same
idempotency key store nothing twice, decisions are read back per address; the
database enforces the chain also when workers race.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from stratum_ml.serving.decisions import (
    DecisionConflict,
    DecisionError,
    DecisionStore,
    RecordedDecision,
    read_decisions,
)
from stratum_ml.serving.outcomes import (
    DuplicateOutcome,
    OutcomeError,
    OutcomeStore,
    read_outcomes,
)
from stratum_ml.store import Store
from stratum_ml.store.idempotency import IdempotencyKeyReused
from stratum_ml.store.tables import DecisionRow

A, B = "0479010000000001", "0479010000000002"
ANALYST = "0123456789abcdef"


def decide(store: DecisionStore, address: str = A, **changes: Any) -> RecordedDecision:
    fields: dict[str, Any] = {
        "address_id": address,
        "decision": "pass_on_for_visit",
        "reason": "signals_several_sources",
        "note": "water use four times the usual",
        "decided_by": ANALYST,
        "role": "analyst",
        "key_name": "team north",
        "model_version": "3",
        "scoring_date": dt.date(2026, 11, 1),
        "rank": 7,
        "probability": 0.43,
    }
    fields.update(changes)
    return store.record(**fields)


# --------------------------------------------------------------------------- decisions


def test_a_second_decision_must_supersede_the_open_one(store: Store) -> None:
    decisions = DecisionStore(store)
    first = decide(decisions)
    assert (first.role, first.key_name, first.is_open) == ("analyst", "team north", True)
    with pytest.raises(DecisionConflict) as refused:
        decide(decisions, decision="decline")
    message = str(refused.value)
    assert f"address {A} already has an open decision {first.decision_id}" in message
    assert f'"supersedes": "{first.decision_id}"' in message
    second = decide(decisions, decision="decline", supersedes=first.decision_id)
    assert second.supersedes == first.decision_id
    # the superseded decision is closed: superseding it again is refused, naming the open one
    with pytest.raises(DecisionConflict, match=f"already superseded by {second.decision_id}.*"
                       f"open decision is {second.decision_id}"):  # fmt: skip
        decide(decisions, supersedes=first.decision_id)
    history = decisions.history(A)
    assert [d.decision_id for d in history] == [first.decision_id, second.decision_id]
    assert [d.superseded_by for d in history] == [second.decision_id, None]
    assert [d.is_open for d in history] == [False, True]
    # another address has its own chain
    other = decide(decisions, B)
    assert other.is_open and decisions.history(B) == [other]
    assert len(read_decisions(store)) == 3


def test_superseding_must_name_a_decision_on_the_same_address(store: Store) -> None:
    decisions = DecisionStore(store)
    on_a = decide(decisions)
    with pytest.raises(DecisionError, match=f"no decision {on_a.decision_id} on address {B}"):
        decide(decisions, B, supersedes=on_a.decision_id)
    with pytest.raises(DecisionError, match="no decision dec-0+ on address"):
        decide(decisions, supersedes="dec-" + "0" * 32)
    assert len(read_decisions(store)) == 1


def test_the_database_itself_keeps_one_chain_per_address(store: Store) -> None:
    first = decide(DecisionStore(store))

    def insert(**changes: Any) -> None:
        fields: dict[str, Any] = {
            "decision_id": "dec-" + "f" * 32,
            "address_id": A,
            "decision": "decline",
            "reason": "other",
            "note": "written past the store's checks",
            "decided_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
            "decided_by": ANALYST,
            "model_version": "3",
            "scoring_date": dt.date(2026, 11, 1),
            "rank_at_decision": 1,
            "probability_at_decision": 0.5,
        }
        fields.update(changes)
        with store.transaction() as session:
            session.add(DecisionRow(**fields))

    with pytest.raises(IntegrityError):  # a second chain start on the address
        insert()
    with pytest.raises(IntegrityError):  # superseding a decision on another address
        insert(address_id=B, supersedes=first.decision_id)
    with pytest.raises(IntegrityError):  # an unknown decision
        insert(supersedes="dec-" + "e" * 32)
    with pytest.raises(IntegrityError):  # not one of the three decisions
        insert(address_id=B, decision="maybe")
    insert(supersedes=first.decision_id)
    with pytest.raises(IntegrityError):  # a fork: the same decision superseded twice
        insert(decision_id="dec-" + "d" * 32, supersedes=first.decision_id)


def _race(n: int, attempt: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    """Run ``attempt(i)`` in ``n`` threads started together."""
    barrier = threading.Barrier(n)
    results: list[object] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results.append(attempt(i))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertions
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_racing_workers_store_one_open_decision(store: Store) -> None:
    decisions = DecisionStore(store)
    results, errors = _race(6, lambda i: decide(decisions, note=f"worker {i}"))
    assert len(results) == 1
    assert len(errors) == 5 and all(isinstance(e, DecisionConflict) for e in errors), errors
    open_now = [d for d in decisions.history(A) if d.is_open]
    assert len(open_now) == 1 and len(read_decisions(store)) == 1


def test_a_retried_decision_is_stored_once_and_answered_alike(store: Store) -> None:
    decisions = DecisionStore(store)
    first = decide(decisions, idempotency_key="req-1")
    again = decide(decisions, idempotency_key="req-1")
    assert again.replayed and not first.replayed
    assert again.decision_id == first.decision_id and again.decided_at == first.decided_at
    assert len(read_decisions(store)) == 1
    with pytest.raises(IdempotencyKeyReused, match="already used for a different decision"):
        decide(decisions, idempotency_key="req-1", reason="recent_reports")
    with pytest.raises(IdempotencyKeyReused):  # same content, another caller
        decide(decisions, idempotency_key="req-1", decided_by="fedcba9876543210")
    with pytest.raises(DecisionError, match="Idempotency-Key: must be 1 to 255"):
        decide(decisions, idempotency_key="has a space")
    # racing retries of one request: one row, every answer the same decision
    results, errors = _race(5, lambda i: decide(decisions, B, idempotency_key="req-2"))
    assert errors == []
    assert len({r.decision_id for r in results if isinstance(r, RecordedDecision)}) == 1
    assert len(read_decisions(store)) == 2


def test_history_of_all_addresses_is_the_latest_first_kept_in_order(store: Store) -> None:
    decisions = DecisionStore(store)
    made = [decide(decisions, f"04790100000000{i:02d}") for i in range(5)]
    latest = decisions.history(limit=2)
    assert [d.decision_id for d in latest] == [d.decision_id for d in made[3:]]
    assert decisions.history("0479019999999999") == []
    assert all(d.decided_at.tzinfo is dt.UTC for d in decisions.history())


# --------------------------------------------------------------------------- outcomes


def visit(store: OutcomeStore, **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "address_id": A,
        "inspected_at": dt.date(2026, 10, 20),
        "reason": "report",
        "outcome": "violation",
        "violation_type": "overcrowding",
        "recorded_by": "0123456789abcdef",
        "today": dt.date(2026, 11, 1),
    }
    fields.update(changes)
    return store.record(**fields)


def test_outcomes_round_trip_and_refuse_the_same_visit(store: Store) -> None:
    outcomes = OutcomeStore(store, [A, B])
    first = visit(outcomes)
    assert first.inspection_id.startswith("svc-")
    with pytest.raises(DuplicateOutcome, match=first.inspection_id):
        visit(outcomes)
    no_type = visit(outcomes, outcome="no_violation", violation_type=None)
    with pytest.raises(DuplicateOutcome, match=no_type.inspection_id):
        visit(outcomes, outcome="no_violation", violation_type=None)
    table = read_outcomes(store, provenance=True)
    assert table["inspection_id"].tolist() == [first.inspection_id, no_type.inspection_id]
    assert str(table["inspected_at"].dtype).startswith("datetime64")
    assert table["recorded_by"].tolist() == ["0123456789abcdef"] * 2
    assert list(read_outcomes(store).columns) == [
        "inspection_id",
        "address_id",
        "inspected_at",
        "reason",
        "outcome",
        "violation_type",
    ]


def test_outcome_rules_are_checked_before_anything_is_stored(store: Store) -> None:
    outcomes = OutcomeStore(store, [A])
    with pytest.raises(OutcomeError) as refused:
        visit(
            outcomes,
            address_id=B,
            inspected_at=dt.date.today() + dt.timedelta(days=30),
            outcome="no_violation",
        )
    message = str(refused.value)
    assert "not in the address register" in message and "in the future" in message
    assert "violation_type" in message
    assert read_outcomes(store).empty


def test_a_retried_outcome_is_stored_once(store: Store) -> None:
    outcomes = OutcomeStore(store, [A, B])
    first = visit(outcomes, idempotency_key="visit-1")
    again = visit(outcomes, idempotency_key="visit-1")
    assert (again.inspection_id, again.replayed) == (first.inspection_id, True)
    with pytest.raises(IdempotencyKeyReused, match="different feedback"):
        visit(outcomes, idempotency_key="visit-1", address_id=B)
    # the same visit under a new key is still the same visit
    with pytest.raises(DuplicateOutcome):
        visit(outcomes, idempotency_key="visit-2")
    results, errors = _race(4, lambda i: visit(outcomes, address_id=B, idempotency_key="v-3"))
    assert errors == [] and len({r.inspection_id for r in results}) == 1  # type: ignore[attr-defined]
    assert len(read_outcomes(store)) == 2
