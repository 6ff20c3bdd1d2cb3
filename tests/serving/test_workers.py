"""Several service workers on one machine (issue 11, item 10): what they must share.

Fast tests of the parts; ``test_workers_service.py`` runs ``stratum serve`` with two
workers end to end.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratum_ml.config import Settings
from stratum_ml.serving.audit import AuditLog
from stratum_ml.serving.audit_anchor import DailyAnchor, stored_checkpoints
from stratum_ml.serving.champion_watch import RETELL_SECONDS, first_to_tell
from stratum_ml.serving.gate.limits import PROBES, RateLimiter
from stratum_ml.serving.launch import (
    WORKERS_ENV,
    LaunchError,
    default_workers,
    serve,
    service_workers,
)
from stratum_ml.store import Store, open_store

# --------------------------------------------------------------------------- rate limits


def test_workers_opening_one_file_share_the_buckets(tmp_path: Path) -> None:
    path = tmp_path / "rate_limits.bin"
    first, second = RateLimiter(path=path), RateLimiter(path=path)  # two workers
    taken = [(first if i % 2 else second).take("key", "k1", 0.001, 4) for i in range(8)]
    assert taken[:4] == [0, 0, 0, 0] and all(wait > 0 for wait in taken[4:])
    assert first.take("key", "k2", 0.001, 4) == 0  # another bucket is untouched
    assert path.stat().st_mode & 0o777 == 0o600


def _take_many(path: str, n: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    limiter = RateLimiter(path=Path(path))
    out.put(sum(limiter.take("address", "10.0.0.7", 0.001, 50) == 0 for _ in range(n)))


def test_processes_together_get_the_limit_once(tmp_path: Path) -> None:
    path = str(tmp_path / "rate_limits.bin")
    out: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()  # type: ignore[type-arg]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_take_many, args=(path, 40, out)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sum(out.get(timeout=10) for _ in workers) == 50  # not 3 x 50


def test_a_full_neighbourhood_gives_up_its_least_recently_used_bucket(tmp_path: Path) -> None:
    clock = [0.0]
    limiter = RateLimiter(lambda: clock[0], path=tmp_path / "r.bin")
    table = limiter._table  # noqa: SLF001 - the probe sequence is what is tested
    home = next(table._slots_of(b"\0" * 16))  # type: ignore[union-attr]  # noqa: SLF001
    assert home == 0
    # far more buckets than slots in one neighbourhood: none fails, the newest are kept
    for i in range(PROBES * 50):
        clock[0] = float(i)
        assert limiter.take("address", f"10.0.{i // 256}.{i % 256}", 0.001, 1) == 0
    assert limiter.take("address", f"10.0.{(i) // 256}.{i % 256}", 0.001, 1) > 0


# --------------------------------------------------------------------------- workers setting


def test_the_workers_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert service_workers({}) == default_workers() in (1, 2)
    assert service_workers({WORKERS_ENV: "4"}) == 4
    for bad in ("0", "33", "two", "-1"):
        with pytest.raises(ValueError, match="1 to 32"):
            service_workers({WORKERS_ENV: bad})
    with pytest.raises(LaunchError, match="--workers must be a whole number from 1 to 32"):
        serve(Path("no-such-folder"), workers=99)


# --------------------------------------------------------------------------- anchor, alerts


@pytest.fixture
def home_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("STRATUM_HOME", str(tmp_path))
    store = open_store(f"sqlite:///{tmp_path / 'stratum.db'}")
    yield store
    store.close()


def test_workers_starting_together_sign_the_head_once(tmp_path: Path, home_store: Store) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(
        key_id=None, role=None, endpoint="score", address_ids=[], model_version="1", status=200
    )
    anchors = [DailyAnchor(log, home_store, interval_s=3600) for _ in range(2)]
    started = [a.start() for a in anchors]
    assert started[0] is not None and started[1] is None
    log.append(
        key_id=None, role=None, endpoint="score", address_ids=[], model_version="1", status=200
    )
    for anchor in anchors:
        anchor.stop()
    reasons = [(c.reason, c.head_seq) for c in stored_checkpoints(home_store, log.path)]
    assert reasons == [("start", 1), ("stop", 2), ("stop", 2)]


def test_workers_skip_a_daily_checkpoint_another_just_took(
    tmp_path: Path, home_store: Store
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    anchors = [DailyAnchor(log, home_store, interval_s=1.0) for _ in range(2)]
    for anchor in anchors:
        anchor.start()
    time.sleep(3.3)
    for anchor in anchors:
        anchor._stop.set()  # noqa: SLF001 - stop the loops without a stop checkpoint
    daily = [c for c in stored_checkpoints(home_store, log.path) if c.reason == "daily"]
    # two loops, one a second each, for three seconds: about three, not six
    assert 2 <= len(daily) <= 4, [c.taken_at for c in daily]


def test_a_registry_problem_is_told_once_for_all_workers(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, mlflow_uri=None)
    problem = "the champion alias points at version 3, which has no verified promotion record"
    assert first_to_tell(settings, problem, now=1000.0)
    assert not first_to_tell(settings, problem, now=1001.0)  # the other worker
    assert first_to_tell(settings, "another problem", now=1002.0)
    assert first_to_tell(settings, problem, now=1000.0 + RETELL_SECONDS + 1)


# --------------------------------------------------------------------------- store reads


def test_the_per_request_reads_do_not_wait_for_a_writer(home_store: Store) -> None:
    from sqlalchemy import text

    from stratum_ml.serving.key_lockout import is_locked
    from stratum_ml.serving.served_run import latest_run_id
    from stratum_ml.store.switch import current_pause

    holding, done = threading.Event(), threading.Event()

    def writer() -> None:  # another worker in the middle of a write transaction
        with home_store.transaction() as session:
            session.execute(text("SELECT 1"))
            holding.set()
            done.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        # each read once waited for the write lock (BEGIN IMMEDIATE), ten seconds at most
        assert current_pause(home_store) is None
        assert is_locked(home_store, "0123456789abcdef") is False
        assert latest_run_id(home_store, "stratum-risk", "1") is None
        assert not done.is_set()  # the writer still held its lock throughout
    finally:
        done.set()
        thread.join()
