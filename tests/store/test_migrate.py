"""Migrations: applied on open, on SQLite and PostgreSQL, and the same as the models."""

from __future__ import annotations

import threading
import warnings

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from stratum_ml.store import Store, StoreError, create_store_engine, open_store
from stratum_ml.store.migrate import alembic_config, current_revision, head_revision, upgrade
from stratum_ml.store.tables import Base


def test_open_migrates_to_head(store: Store) -> None:
    assert current_revision(store.engine) == head_revision() == "0014"
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "decisions",
        "visit_outcomes",
        "scoring_runs",
        "run_items",
        "pause_events",
        "run_shadow_items",
        "alembic_version",
    } <= tables


def test_the_migrations_create_exactly_the_models(store: Store) -> None:
    with warnings.catch_warnings():
        # SQLite cannot reflect the expression index; PostgreSQL compares it
        warnings.simplefilter("ignore")
        with store.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_opening_again_changes_nothing(store_url: str) -> None:
    first = open_store(store_url)
    try:
        with first.transaction() as session:
            session.execute(
                text(
                    "INSERT INTO visit_outcomes (inspection_id, address_id, inspected_at, "
                    "reason, outcome, recorded_at, recorded_by) VALUES ('svc-1', "
                    "'0479010000000001', '2026-10-01', 'report', 'no_violation', "
                    "'2026-10-02 09:00:00', 'k')"
                )
            )
    finally:
        first.close()
    again = open_store(store_url)
    try:
        with again.transaction() as session:
            assert session.execute(text("SELECT count(*) FROM visit_outcomes")).scalar() == 1
    finally:
        again.close()


def test_workers_opening_at_once_migrate_once(store_url: str) -> None:
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            open_store(store_url).close()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = create_store_engine(store_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_database_from_a_newer_version_is_refused(store: Store) -> None:
    with store.transaction() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="newer stratum_ml.*up to 0014"):
        upgrade(store.engine)


def test_decisions_stored_before_the_fixed_list_keep_their_text_as_a_note(
    store_url: str,
) -> None:
    engine = create_store_engine(store_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0011")
            connection.execute(
                text(
                    "INSERT INTO decisions (decision_id, address_id, decision, reason, "
                    "decided_at, decided_by, model_version, scoring_date, rank_at_decision, "
                    "probability_at_decision) VALUES ('dec-old', '0479010000000001', 'decline', "
                    "'empty for a year', '2026-10-02 09:00:00', 'k', '3', '2026-10-01', 4, 0.5)"
                )
            )
        upgrade(engine)
        with engine.connect() as connection:
            row = connection.execute(text("SELECT reason, note FROM decisions")).one()
        assert tuple(row) == ("other", "empty for a year")
    finally:
        engine.dispose()
