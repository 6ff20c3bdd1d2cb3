"""The store's engine: the SQLite file and its pragmas, URLs, redaction."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from stratum_ml.config import Settings
from stratum_ml.store import Store, StoreError, create_store_engine, open_store, redacted
from stratum_ml.store.engine import BUSY_TIMEOUT_MS, parse_url
from stratum_ml.store.switch import Actor, current_pause, pause


def test_the_default_store_is_a_private_sqlite_file_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=None)
    assert settings.store_url == f"sqlite:///{(tmp_path / 'home' / 'stratum.db').resolve()}"
    store = open_store(settings.store_url)
    try:
        database = tmp_path / "home" / "stratum.db"
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
        with store.engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
        assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": BUSY_TIMEOUT_MS}
        for companion in database.parent.glob("stratum.db-*"):  # -wal and -shm
            assert stat.S_IMODE(companion.stat().st_mode) == 0o600, companion
    finally:
        store.close()


def test_database_url_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATUM_DATABASE_URL", "postgresql+psycopg://u:pw@db.example/stratum")
    assert Settings().store_url == "postgresql+psycopg://u:pw@db.example/stratum"


def test_urls_are_checked_and_redacted() -> None:
    assert parse_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert redacted("postgresql+psycopg://u:secret@h/d") == "postgresql+psycopg://u:***@h/d"
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        parse_url("mysql://u:secret@h/d")
    with pytest.raises(StoreError) as info:
        parse_url("mysql://u:secret@h/d")
    assert "secret" not in str(info.value)
    with pytest.raises(StoreError, match="not a database URL"):
        parse_url("not a url")
    with pytest.raises(StoreError, match="in-memory"):
        create_store_engine("sqlite://")


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreError, match="cannot open the operational store") as info:
        open_store("postgresql+psycopg://stratum:hunter2@127.0.0.1:9/stratum?connect_timeout=2")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_a_transaction_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as session:
        session.execute(
            text(
                "INSERT INTO visit_outcomes (inspection_id, address_id, inspected_at, reason, "
                "outcome, recorded_at, recorded_by) VALUES ('svc-1', '0479010000000001', "
                "'2026-10-01', 'report', 'no_violation', '2026-10-02 09:00:00', 'k')"
            )
        )
        raise RuntimeError("crash before the commit")
    with store.transaction() as session:
        assert session.execute(text("SELECT count(*) FROM visit_outcomes")).scalar() == 0


def test_a_memo_reads_again_only_after_a_commit_by_any_connection(
    store: Store, store_url: str
) -> None:
    reads: list[int] = []

    def read() -> int:
        reads.append(1)
        return len(reads)

    first = store.memo("k", read)
    cached = store.dialect == "sqlite"  # PostgreSQL has no cheap change counter: it reads
    assert store.memo("k", read) == (first if cached else first + 1)
    other = open_store(store_url)  # as another worker process would
    try:
        pause(other, "a pause by the other worker, to be seen at once", Actor("cli", "alice"))
    finally:
        other.close()
    before = len(reads)
    assert store.memo("k", read) == before + 1  # the other's commit is seen
    with store.transaction() as session:  # and a commit of this store's own engine
        session.execute(text("DELETE FROM visit_outcomes"))
    assert store.memo("k", read) == before + 2
    assert store.memo("other key", read) == before + 3


def test_a_pause_by_another_worker_is_in_force_at_the_next_read(
    store: Store, store_url: str
) -> None:
    assert current_pause(store) is None
    assert current_pause(store) is None  # kept, on SQLite
    other = open_store(store_url)
    try:
        pause(other, "paused from the other worker process", Actor("cli", "alice"))
    finally:
        other.close()
    paused = current_pause(store)
    assert paused is not None and paused.reason == "paused from the other worker process"
