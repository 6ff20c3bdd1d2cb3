"""The kill switch in the store: pause, resume, the state, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from stratum_ml.store import Store
from stratum_ml.store.switch import (
    Actor,
    SwitchChange,
    SwitchError,
    current_pause,
    pause,
    resume,
)
from stratum_ml.store.tables import PauseEventRow

ADMIN = Actor("api", "0123456789abcdef", "admin", "ops - on call")
SHELL = Actor("cli", "alice")
REASON = "precision fell below the current practice in the October check"


def n_events(store: Store) -> int:
    with store.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(PauseEventRow)) or 0)


def test_a_new_store_is_not_paused(store: Store) -> None:
    assert current_pause(store) is None


def test_pause_then_resume_round_trip(store: Store) -> None:
    change = pause(store, REASON, SHELL)
    assert change.changed
    state = current_pause(store)
    assert state is not None and state == change.state
    assert (state.reason, state.by) == (REASON, SHELL)
    assert state.since.tzinfo is not None
    assert "paused since" in change.message and "OS user alice" in change.message
    back = resume(store, ADMIN, "the October check was rerun and passed")
    assert back.changed and back.state is None
    assert current_pause(store) is None
    assert "resumed by key 0123456789abcdef (admin, 'ops - on call')" in back.message
    # pause again: a new event, the latest wins
    pause(store, "second pause for the November extract", ADMIN)
    again = current_pause(store)
    assert again is not None and again.by == ADMIN and again.event > state.event
    assert n_events(store) == 3


def test_flipping_to_where_it_is_changes_nothing(store: Store) -> None:
    nothing = resume(store, SHELL)
    assert (nothing.changed, nothing.state) == (False, None)
    assert "not paused" in nothing.message
    first = pause(store, REASON, SHELL)
    second = pause(store, "another reason, given later", ADMIN)
    assert not second.changed and second.state == first.state
    assert "stays paused" in second.message and REASON in second.message
    assert n_events(store) == 1


@pytest.mark.parametrize(
    ("reason", "fragment"),
    [
        ("too short", "10 to 500 characters"),
        ("   padded    ", "10 to 500 characters"),
        ("x" * 501, "10 to 500 characters"),
        ("resident 123456782 asked for it", "9-digit number"),
        ("mail j.jansen@example.nl about it", "e-mail address"),
        ("=HYPERLINK(evil) in the reason", "spreadsheet formulas"),
    ],
)
def test_a_bad_reason_is_refused_and_nothing_stored(
    store: Store, reason: str, fragment: str
) -> None:
    with pytest.raises(SwitchError, match=fragment) as info:
        pause(store, reason, SHELL)
    assert "123456782" not in str(info.value) and "jansen" not in str(info.value)
    assert current_pause(store) is None and n_events(store) == 0
    pause(store, REASON, SHELL)
    with pytest.raises(SwitchError, match=fragment):
        resume(store, SHELL, reason)
    assert current_pause(store) is not None and n_events(store) == 1


def test_a_failing_audit_hook_stores_nothing(store: Store) -> None:
    def broken(change: SwitchChange) -> None:
        assert change.changed and change.state is not None
        raise OSError("audit log is full")

    with pytest.raises(OSError, match="full"):
        pause(store, REASON, SHELL, on_change=broken)
    assert current_pause(store) is None and n_events(store) == 0
    seen: list[SwitchChange] = []
    pause(store, REASON, SHELL, on_change=seen.append)
    resume(store, SHELL, on_change=seen.append)
    resume(store, SHELL, on_change=seen.append)  # no change: not called
    assert [c.changed for c in seen] == [True, True]


def test_the_table_is_a_chain_that_refuses_a_fork(store: Store) -> None:
    pause(store, REASON, SHELL)
    with pytest.raises(Exception, match="(?i)unique"), store.transaction() as session:
        session.execute(
            text(
                "INSERT INTO pause_events (follows, action, reason, at, channel, actor) "
                "VALUES (0, 'pause', 'a competing first pause', '2026-12-01 09:00:00', "
                "'cli', 'bob')"
            )
        )
    with pytest.raises(Exception, match="(?i)check"), store.transaction() as session:
        session.execute(
            text(
                "INSERT INTO pause_events (follows, action, at, channel, actor) "
                "VALUES (1, 'pause', '2026-12-01 09:00:00', 'cli', 'bob')"
            )
        )


def test_admins_pausing_at_once_store_one_pause(store: Store) -> None:
    changes: list[SwitchChange] = []
    errors: list[BaseException] = []

    def flip(name: str) -> None:
        try:
            changes.append(pause(store, f"{REASON} ({name})", Actor("cli", name)))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(f"admin{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(c.changed for c in changes) == 1
    assert n_events(store) == 1
