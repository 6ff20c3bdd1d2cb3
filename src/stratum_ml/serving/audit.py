"""The audit log of the scoring service: record keeping under EU AI Act art. 12.

One JSON line per request, allowed or refused::

    {"seq": 1, "time": "2026-11-03T09:14:02.123456+00:00", "key_id": "3f9c...",
     "role": "analyst", "endpoint": "score", "address_ids": ["0363010000000001"],
     "model_version": "7", "status": 200, "detail": "", "prev_hash": "000...0",
     "hash": "9a4e..."}

A request refused before its body passed the request model (no key, a wrong
role, a body too large, not JSON, invalid) records no address ids and no
other content of it: only its size and a keyed hash of it, ``"body":
{"bytes": 1234, "hmac": "..."}`` (HMAC-SHA256 under the service's body key,
:func:`body_key`), so that the record stays small however large or hostile
the body, and a body produced later can still be matched to it.

``hash`` is the SHA-256 of the record's canonical JSON (sorted keys, no
spaces, ASCII) without ``hash`` itself; ``prev_hash`` is the previous line's
``hash`` (64 zeros for the first line) and ``seq`` counts from 1. Changing,
removing, inserting or reordering a line therefore breaks the chain at that
line, and :func:`verify_log` names it. The API key is never written, only
its key id; the address ids are BAG ids, not person data.

Writes are durable and ordered: each record is written with one ``O_APPEND``
write under an exclusive ``flock`` on the log itself, the chain continued from
the log's last line as read under that lock, and it is ``fsync``-ed before
:meth:`AuditLog.append` returns. So several service worker processes can share
one log (on a local file system: ``flock`` is not reliable on NFS). The
``fsync`` is a group commit: it runs after the lock is released, and one
``fsync`` makes every record written before it durable, so the calls of a busy
worker that wrote while another ``fsync`` ran share the next one instead of
queueing one each behind the lock (an ``fsync`` costs milliseconds on many
disks). The service's gate uses :meth:`AuditLog.append_async`: the record is
written on its event loop and one syncing thread runs the ``fsync`` for every
record waiting, so a request costs no thread hand-off of its own. A record not
yet acknowledged is always at the log's end; a power cut may lose or tear such a
tail, which ``stratum audit verify`` shows and the service refuses to continue (as
a write cut off half-way).

A chain cannot show that lines were cut off its *end*, or that it was
rewritten with every later hash recomputed. Signed checkpoints of its head,
kept outside the log (:mod:`stratum_ml.serving.audit_anchor`), show both.

A write the service commits to the operational store (a decision, a visit
outcome) is first announced by an *intent* record (:meth:`AuditLog.append_intent`:
status :data:`INTENT_STATUS`, detail ``intent <row id>``), written before the
row's transaction commits; the answer's own record follows as usual. So a crash
can leave an intent without its row (reported as "not committed"), never a row
without its record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict, Unpack

from stratum_ml.config import get_settings

GENESIS_HASH = "0" * 64
DETAIL_MAX = 200
#: ``status`` of an intent record: a row is about to be committed (not an HTTP answer)
INTENT_STATUS = 0
#: ``detail`` of an intent record starts with this, followed by the row's id
INTENT_PREFIX = "intent "


class BodyDigest(TypedDict):
    """What a refused request's record keeps of its body: its size and a keyed hash."""

    bytes: int
    hmac: str | None


class AuditRecord(TypedDict):
    """One line of the audit log (``body`` only on a request refused before its body passed)."""

    seq: int
    time: str
    key_id: str | None
    role: str | None
    endpoint: str
    address_ids: list[str]
    model_version: str | None
    status: int
    detail: str
    prev_hash: str
    hash: str
    body: NotRequired[BodyDigest]


class RecordFields(TypedDict):
    """What a caller gives :meth:`AuditLog.append` (and ``append_async``, ``write``).

    ``key_id``: the caller's key (None when the request carried no known key);
    ``role``: the key's role (None when unknown); ``endpoint``: the endpoint asked for;
    ``address_ids``: every address id the request asked for (may be empty);
    ``model_version``: the version that served (or would have served) the request;
    ``status``: the HTTP status of the answer; ``detail``: a short outcome (at most
    :data:`DETAIL_MAX` characters are kept); ``body``: size and keyed hash of a refused
    request's body (:func:`body_digest`).
    """

    key_id: str | None
    role: str | None
    endpoint: str
    address_ids: Sequence[str]
    model_version: str | None
    status: int
    detail: NotRequired[str]
    body: NotRequired[BodyDigest | None]


#: fields a record may leave out (a TypedDict cannot tell under postponed annotations)
_OPTIONAL_FIELDS = frozenset({"body"})
_FIELDS = frozenset(AuditRecord.__annotations__) - _OPTIONAL_FIELDS
#: the file of the key that hashes refused bodies, beside the audit log's folder default
BODY_KEY_FILE = "audit_body.key"


class AuditLogError(Exception):
    """The log cannot be continued safely; no record was written."""


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify_log`.

    Attributes
    ----------
    ok
        True when every line is intact and the chain is unbroken.
    n_records
        Intact records: all of them when ``ok``, else those before ``first_bad_line``.
    first_bad_line
        1-based line number of the first broken line, or None.
    reason
        What is wrong with that line; empty when ``ok``.
    last_hash
        ``hash`` of the last intact record (:data:`GENESIS_HASH` when there is none).
    """

    ok: bool
    n_records: int
    first_bad_line: int | None
    reason: str
    last_hash: str


def default_audit_log() -> Path:
    """The audit log in force: ``$STRATUM_AUDIT_LOG`` or ``<home>/audit.jsonl``."""
    env = os.environ.get("STRATUM_AUDIT_LOG")
    return Path(env) if env else get_settings().home / "audit.jsonl"


def body_key(path: str | os.PathLike[str] | None = None) -> bytes:
    """The service's key for hashing refused bodies: 32 random bytes, made once (mode 0600).

    Parameters
    ----------
    path
        The key file; default ``<home>/audit_body.key``.
    """
    path = Path(path) if path is not None else get_settings().home / BODY_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != 32:
            raise AuditLogError(f"{path}: not a body key (32 bytes)") from None
        return key
    key = os.urandom(32)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    return key


def body_digest(key: bytes, body: bytes | None, size: int) -> BodyDigest:
    """A refused request's :class:`BodyDigest`: ``size`` bytes, HMAC of ``body`` if it was read."""
    mac = None if body is None else hmac.new(key, body, hashlib.sha256).hexdigest()
    return BodyDigest(bytes=int(size), hmac=mac)


def record_hash(record: Mapping[str, object]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``record`` without its ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _last_line(fd: int) -> bytes:
    """The file's last line, with its line end if it has one (b"" for an empty file)."""
    end = os.lseek(fd, 0, os.SEEK_END)
    pos, block, tail = end, 8192, b""
    while pos > 0:
        step = min(block, pos)
        pos -= step
        tail = os.pread(fd, step, pos) + tail
        cut = tail.rfind(b"\n", 0, len(tail) - 1)
        if cut >= 0:
            return tail[cut + 1 :]
        block *= 2
    return tail


class AuditLog:
    """An append-only, hash-chained audit log file.

    Opening checks that the log's last line can be continued, so that a
    damaged log stops the service at start-up rather than at its first
    request.

    Parameters
    ----------
    path
        The log file; created with mode 0600 (and its folder) when missing.

    Raises
    ------
    AuditLogError
        When the last line is incomplete (an interrupted write) or not a record.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # flock(2) already excludes other threads, since each append opens its
        # own descriptor; the thread lock keeps that true where Python emulates
        # flock with per-process fcntl locks.
        self._lock = threading.Lock()
        # group commit: the highest seq this process wrote, and the highest it knows durable
        self._sync_lock = threading.Lock()
        self._written = 0
        self._durable = 0
        self._syncer = _GroupSync(self)
        with self._locked() as fd:
            self._chain_tail(fd)

    @contextmanager
    def _locked(self) -> Iterator[int]:
        with self._lock:
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            fd = os.open(self.path, flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield fd
            finally:
                os.close(fd)  # releases the flock

    def _chain_tail(self, fd: int) -> tuple[int, str]:
        """``(seq, hash)`` of the last record, ``(0, GENESIS_HASH)`` for an empty log."""
        line = _last_line(fd)
        if not line:
            return 0, GENESIS_HASH
        if not line.endswith(b"\n"):
            raise AuditLogError(
                f"{self.path}: the last line is incomplete (an interrupted write?); "
                "run `stratum audit verify` and have it examined before writing on"
            )
        try:
            record = json.loads(line)
            seq, last_hash = record["seq"], record["hash"]
        except (ValueError, TypeError, KeyError):
            raise AuditLogError(f"{self.path}: the last line is not an audit record") from None
        if not isinstance(seq, int) or not isinstance(last_hash, str):
            raise AuditLogError(f"{self.path}: the last line is not an audit record")
        return seq, last_hash

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last record, read under the log's lock.

        Raises
        ------
        AuditLogError
            When the last line is incomplete or not a record.
        """
        with self._locked() as fd:
            return self._chain_tail(fd)

    def append_intent(
        self,
        *,
        key_id: str | None,
        role: str | None,
        endpoint: str,
        address_ids: Sequence[str],
        model_version: str | None,
        row_id: str,
    ) -> AuditRecord:
        """Record, durably, that the row ``row_id`` is about to be committed.

        Called inside the row's transaction, before the commit: if this write fails
        the row is not stored; if the commit fails after it, the intent stays and
        ``stratum audit verify`` reports it as not committed.
        """
        return self.append(
            key_id=key_id,
            role=role,
            endpoint=endpoint,
            address_ids=address_ids,
            model_version=model_version,
            status=INTENT_STATUS,
            detail=f"{INTENT_PREFIX}{row_id}",
        )

    def append(self, **fields: Unpack[RecordFields]) -> AuditRecord:
        """Write one record (:class:`RecordFields`) and make it durable before returning it:
        the record as written, with its ``seq`` and ``hash``."""
        record, mine = self.write(**fields)
        self._make_durable(mine)
        return record

    async def append_async(self, **fields: Unpack[RecordFields]) -> AuditRecord:
        """:meth:`append` for an event loop: returns once the record is durable.

        The record is written on the loop (a lock, a read of the last line, one write:
        no ``fsync``); then the call waits for the log's syncing thread, which runs one
        ``fsync`` for every record waiting (a group commit). A busy loop so hands no
        thread a job per record.

        Raises
        ------
        AuditLogError
            When the record cannot be written or made durable.
        """
        record, mine = self.write(**fields)
        await self._syncer.durable(mine)
        return record

    def write(
        self,
        *,
        key_id: str | None,
        role: str | None,
        endpoint: str,
        address_ids: Sequence[str],
        model_version: str | None,
        status: int,
        detail: str = "",
        body: BodyDigest | None = None,
    ) -> tuple[AuditRecord, int]:
        """Write one record (:class:`RecordFields`), not yet durable (see :meth:`append`):
        the record and this process's count of writes with it, which an ``fsync`` must
        cover."""
        if isinstance(address_ids, str):
            raise TypeError("address_ids must be a sequence of ids, not a single string")
        with self._locked() as fd:
            seq, prev_hash = self._chain_tail(fd)
            record = AuditRecord(
                seq=seq + 1,
                time=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
                key_id=key_id,
                role=None if role is None else str(role),
                endpoint=str(endpoint),
                address_ids=[str(a) for a in address_ids],
                model_version=model_version,
                status=int(status),
                detail=detail[:DETAIL_MAX],
                prev_hash=prev_hash,
                hash="",
            )
            if body is not None:
                record["body"] = BodyDigest(bytes=int(body["bytes"]), hmac=body["hmac"])
            record["hash"] = record_hash(record)
            line = memoryview((json.dumps(record, separators=(",", ":")) + "\n").encode("ascii"))
            while line:  # a write to a regular file may, rarely, be short
                line = line[os.write(fd, line) :]
            mine = self._written = self._written + 1
        return record, mine

    def _make_durable(self, mine: int) -> None:
        """Return once this process's ``mine``-th write is on disk: an ``fsync`` of the log
        started after it, by this call or by another thread's (one covers them all)."""
        with self._sync_lock:
            if self._durable >= mine:
                return  # an fsync that started after our write has finished
            upto = self._written  # every write counted here precedes the fsync below
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._durable = upto


class _GroupSync:
    """The thread that makes records durable for the calls of :meth:`AuditLog.append_async`.

    A call queues (its write count, its loop, a future) and is woken only when the
    thread is idle; the thread takes every call queued, runs one ``fsync`` after their
    writes (:meth:`AuditLog._make_durable` of the highest count), then settles their
    futures with one callback per loop. Started on first use; a daemon.
    """

    def __init__(self, log: AuditLog) -> None:
        self._log = log
        self._cond = threading.Condition()
        self._waiting: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._idle = True
        self._thread: threading.Thread | None = None

    def durable(self, mine: int) -> asyncio.Future[None]:
        """A future done once this process's ``mine``-th write is on disk."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            self._waiting.append((mine, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="stratum-audit-fsync"
                )
                self._thread.start()
            elif self._idle:
                self._cond.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting:
                    self._idle = True
                    self._cond.wait()
                self._idle = False
                batch, self._waiting = self._waiting, []
            error: str | None = None
            try:
                self._log._make_durable(max(mine for mine, _, _ in batch))
            except Exception as exc:  # every waiting call gets it: none is answered
                error = f"{self._log.path}: the audit record could not be made durable: {exc}"
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for _, loop, future in batch:
                by_loop.setdefault(loop, []).append(future)
            for loop, futures in by_loop.items():
                with suppress(RuntimeError):  # a closed loop: nobody waits any more
                    loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: str | None) -> None:
    for future in futures:
        if future.done():  # the call was cancelled (the client went away)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(AuditLogError(error))


class _Broken(Exception):
    """A line that breaks the log; the message says how."""


def _check_line(raw: bytes, seq: int, prev_hash: str) -> str:
    """Check one raw line as record number ``seq``; return its hash or raise :class:`_Broken`."""
    if not raw.endswith(b"\n"):
        raise _Broken("truncated last line: it has no line end (an interrupted write, or cut off)")
    try:
        record = json.loads(raw)
    except ValueError:
        raise _Broken("the line is not valid JSON") from None
    if not isinstance(record, dict) or set(record) - _OPTIONAL_FIELDS != _FIELDS:
        raise _Broken("the line is not an audit record (fields missing or unexpected)")
    if record["hash"] != record_hash(record):
        raise _Broken("the hash does not match the record's content: the line was changed")
    if record["seq"] != seq:
        raise _Broken(
            f"seq is {record['seq']!r} where {seq} was expected: "
            "a line was removed, inserted or moved"
        )
    if record["prev_hash"] != prev_hash:
        raise _Broken(
            "prev_hash is not the previous line's hash: a line was removed, inserted or moved"
        )
    return str(record["hash"])


def verify_log(path: str | os.PathLike[str]) -> VerifyResult:
    """Check every line and the chain of an audit log, stopping at the first broken line.

    Raises
    ------
    FileNotFoundError
        When there is no log at ``path``.
    """
    n_records, last_hash = 0, GENESIS_HASH
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                last_hash = _check_line(raw, n_records + 1, last_hash)
            except _Broken as exc:
                return VerifyResult(False, n_records, line_no, str(exc), last_hash)
            n_records += 1
    return VerifyResult(True, n_records, None, "", last_hash)


def read_last(path: str | os.PathLike[str], n: int) -> list[AuditRecord]:
    """The last ``n`` records, as written (unchecked: use :func:`verify_log` for that).

    Raises
    ------
    ValueError
        When one of those lines is not valid JSON.
    """
    with open(path, "rb") as fh:
        lines = deque(fh, maxlen=n)
    return [json.loads(line) for line in lines]
