"""The hash-chained audit log (``stratum_ml.serving.audit``)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.serving.audit import (
    GENESIS_HASH,
    AuditLog,
    AuditLogError,
    default_audit_log,
    record_hash,
    verify_log,
)


def write(log: AuditLog, i: int) -> None:
    log.append(
        key_id="0123456789abcdef",
        role="analyst",
        endpoint="score",
        address_ids=[f"03630100000{i:05d}", "0363010000099999"],
        model_version="3",
        status=200,
        detail=f"request {i}",
    )


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """A log of 50 records."""
    path = tmp_path / "state" / "audit.jsonl"
    log = AuditLog(path)
    for i in range(50):
        write(log, i)
    return path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_records_chain_and_verify(log_path: Path) -> None:
    records = [json.loads(line) for line in lines_of(log_path)]
    assert [r["seq"] for r in records] == list(range(1, 51))
    assert records[0]["prev_hash"] == GENESIS_HASH
    for before, after in zip(records, records[1:], strict=False):
        assert after["prev_hash"] == before["hash"] == record_hash(before)
    assert records[9]["address_ids"] == ["0363010000000009", "0363010000099999"]
    assert records[9]["time"].endswith("+00:00")
    result = verify_log(log_path)
    assert (result.ok, result.n_records, result.first_bad_line) == (True, 50, None)
    assert result.last_hash == records[-1]["hash"]
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600


def test_empty_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path)
    assert verify_log(path).ok and verify_log(path).n_records == 0


def test_reopened_log_continues_the_chain(log_path: Path) -> None:
    record = AuditLog(log_path).append(
        key_id=None,
        role=None,
        endpoint="dossier",
        address_ids=[],
        model_version=None,
        status=401,
        detail="missing API key" + "!" * 500,
    )
    assert record["seq"] == 51
    assert record["prev_hash"] == json.loads(lines_of(log_path)[49])["hash"]
    assert len(record["detail"]) == 200
    assert verify_log(log_path).n_records == 51


def edit_field(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[9])
    record["status"] = 403
    lines[9] = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    return lines


def edit_and_rehash(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[9])
    record["address_ids"] = []
    record["hash"] = record_hash(record)
    lines[9] = (json.dumps(record) + "\n").encode()
    return lines


def delete(lines: list[bytes]) -> list[bytes]:
    del lines[9]
    return lines


def swap(lines: list[bytes]) -> list[bytes]:
    lines[9], lines[10] = lines[10], lines[9]
    return lines


def truncate_last(lines: list[bytes]) -> list[bytes]:
    lines[-1] = lines[-1][:-20]
    return lines


def drop_last_line_end(lines: list[bytes]) -> list[bytes]:
    lines[-1] = lines[-1][:-1]
    return lines


def forge_appended(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[-1])
    record.update(seq=51, prev_hash="f" * 64, detail="forged")
    record["hash"] = record_hash(record)
    return [*lines, (json.dumps(record) + "\n").encode()]


def drop_first(lines: list[bytes]) -> list[bytes]:
    return lines[1:]


def blank_line(lines: list[bytes]) -> list[bytes]:
    lines.insert(20, b"\n")
    return lines


@pytest.mark.parametrize(
    ("tamper", "bad_line", "reason"),
    [
        (edit_field, 10, "hash does not match"),
        (edit_and_rehash, 11, "prev_hash"),
        (delete, 10, "seq is 11 where 10 was expected"),
        (swap, 10, "seq is 11 where 10 was expected"),
        (truncate_last, 50, "truncated last line"),
        (drop_last_line_end, 50, "truncated last line"),
        (forge_appended, 51, "prev_hash"),
        (drop_first, 1, "seq is 2 where 1 was expected"),
        (blank_line, 21, "not valid JSON"),
    ],
)
def test_verify_detects_tampering(
    log_path: Path,
    tamper: Callable[[list[bytes]], list[bytes]],
    bad_line: int,
    reason: str,
) -> None:
    log_path.write_bytes(b"".join(tamper(lines_of(log_path))))
    result = verify_log(log_path)
    assert not result.ok
    assert result.first_bad_line == bad_line
    assert reason in result.reason
    assert result.n_records == bad_line - 1


def test_append_refuses_to_continue_an_incomplete_last_line(log_path: Path) -> None:
    log = AuditLog(log_path)  # opened before the damage, as in a running service
    log_path.write_bytes(log_path.read_bytes()[:-20])
    size = log_path.stat().st_size
    with pytest.raises(AuditLogError, match="incomplete"):
        write(log, 99)
    assert log_path.stat().st_size == size
    with pytest.raises(AuditLogError, match="incomplete"):
        AuditLog(log_path)


def test_address_ids_must_be_a_sequence_of_ids(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="single string"):
        AuditLog(tmp_path / "a.jsonl").append(
            key_id=None,
            role=None,
            endpoint="score",
            address_ids="0363010000000001",
            model_version=None,
            status=200,
        )


def append_many(path: str, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        write(log, i)


def append_and_exit(path: str) -> None:
    write(AuditLog(path), 7)
    os._exit(0)  # no cleanup, no buffers flushed by the interpreter


def test_concurrent_writer_processes(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=append_many, args=(str(path), 50)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    result = verify_log(path)
    assert (result.ok, result.n_records) == (True, 200), result
    assert [json.loads(line)["seq"] for line in lines_of(path)] == list(range(1, 201))


def test_concurrent_writer_threads(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    threads = [
        threading.Thread(target=lambda: [write(log, i) for i in range(25)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (verify_log(path).ok, verify_log(path).n_records) == (True, 200)


def test_busy_writers_share_an_fsync_and_each_returns_after_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    synced: list[int] = []  # the log's size when each fsync started: what it made durable
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:  # a disk where an fsync takes 20 ms
        size = os.fstat(fd).st_size
        threading.Event().wait(0.02)
        real_fsync(fd)
        synced.append(size)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    returned: list[tuple[int, int]] = []  # (end of the record in the file, fsyncs done)

    def writer() -> None:
        for i in range(10):
            record = log.append(
                key_id=None,
                role=None,
                endpoint="score",
                address_ids=[],
                model_version="3",
                status=200,
                detail=f"request {i}",
            )
            end = sum(len(line) for line in lines_of(path)[: record["seq"]])
            returned.append((end, max(synced, default=0)))

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (verify_log(path).ok, verify_log(path).n_records) == (True, 80)
    assert len(synced) < 60  # before: one fsync per record, 80, each behind the lock
    # no call returned before an fsync covered its record
    assert all(end <= durable for end, durable in returned)


def test_records_awaited_on_an_event_loop_share_fsyncs_in_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    synced: list[tuple[int, str]] = []  # (the log's size at the fsync, the thread's name)
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:  # a disk where an fsync takes 20 ms
        size = os.fstat(fd).st_size
        threading.Event().wait(0.02)
        real_fsync(fd)
        synced.append((size, threading.current_thread().name))

    monkeypatch.setattr(os, "fsync", slow_fsync)
    returned: list[tuple[int, int]] = []  # (end of the record in the file, durable size)

    async def call(i: int) -> None:
        await asyncio.sleep(0.001 * (i % 7))
        record = await log.append_async(
            key_id=None,
            role=None,
            endpoint="score",
            address_ids=[],
            model_version="3",
            status=200,
            detail=f"request {i}",
        )
        end = sum(len(line) for line in lines_of(path)[: record["seq"]])
        returned.append((end, max((size for size, _ in synced), default=0)))

    async def main() -> None:
        await asyncio.gather(*(call(i) for i in range(80)))

    asyncio.run(main())
    assert (verify_log(path).ok, verify_log(path).n_records) == (True, 80)
    # one syncing thread, no thread per record; far fewer fsyncs than records
    assert {name for _, name in synced} == {"stratum-audit-fsync"}
    assert len(synced) < 20
    assert all(end <= durable for end, durable in returned)


def test_a_failed_fsync_fails_every_call_waiting_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)

    async def call() -> None:
        await log.append_async(
            key_id=None, role=None, endpoint="score", address_ids=[], model_version="3", status=200
        )

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(*(call() for _ in range(5)), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, AuditLogError) for o in outcomes)
    assert "could not be made durable" in str(outcomes[0])


def test_record_survives_hard_exit(log_path: Path) -> None:
    child = multiprocessing.get_context("spawn").Process(
        target=append_and_exit, args=(str(log_path),)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    result = verify_log(log_path)
    assert (result.ok, result.n_records) == (True, 51)
    assert json.loads(lines_of(log_path)[-1])["detail"] == "request 7"


def test_default_audit_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STRATUM_AUDIT_LOG", raising=False)
    monkeypatch.setenv("STRATUM_HOME", str(tmp_path))
    assert default_audit_log() == tmp_path / "audit.jsonl"
    monkeypatch.setenv("STRATUM_AUDIT_LOG", str(tmp_path / "a.jsonl"))
    assert default_audit_log() == tmp_path / "a.jsonl"


def test_audit_cli(log_path: Path) -> None:
    runner = CliRunner()
    env = {"STRATUM_AUDIT_LOG": str(log_path), "COLUMNS": "250"}

    ok = runner.invoke(app, ["audit", "verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "ok: 50 records" in ok.stdout

    shown = runner.invoke(app, ["audit", "show", "--last", "3"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "0363010000000049" in shown.stdout and "0363010000000046" not in shown.stdout

    log_path.write_bytes(b"".join(swap(lines_of(log_path))))
    tampered = runner.invoke(app, ["audit", "verify", str(log_path)], env={})
    assert tampered.exit_code == 1
    assert "line 10" in tampered.stdout and "seq is 11" in tampered.stdout

    missing = runner.invoke(app, ["audit", "verify", str(log_path.with_name("none.jsonl"))])
    assert missing.exit_code == 2 and "no audit log" in missing.stderr
