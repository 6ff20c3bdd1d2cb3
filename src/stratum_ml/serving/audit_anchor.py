"""The audit log's anchor: signed checkpoints of its head, kept outside the log.

A hash chain shows a line changed, moved or removed in the middle of the log
(:mod:`stratum_ml.serving.audit`), but not lines cut off its end, an emptied
log, or a log rewritten with every later hash recomputed. A *checkpoint* records
the log's head (the ``seq`` and ``hash`` of its last record) with the time and
why it was taken, signed with HMAC-SHA256 under the ``audit-anchor`` key
(:mod:`stratum_ml.signing`, kept outside the log's folder). Checkpoints are taken

* at every start and clean stop of the service (``start``, ``stop``), and at least
  daily while it runs (``daily``, ``STRATUM_AUDIT_CHECKPOINT_SECONDS``): :class:`DailyAnchor`;
* with every scoring run (``run``), and then also written to that run's MLflow run
  as the tag :data:`MLFLOW_TAG`;
* on request (``manual``: ``stratum audit checkpoint``).

They are stored in the operational store's ``audit_checkpoints`` table.
:func:`verify_anchored` checks the log against every checkpoint of it found in
the store and in MLflow: a checkpoint whose record is missing from the log
(removed from the end, or emptied) or differs from it (re-chained), or whose
signature does not verify, is tampering.

The same check reports intent records (:meth:`~stratum_ml.serving.audit.AuditLog.append_intent`)
whose row is not in the operational store as *not committed*: the service crashed,
or the database refused, between announcing a write and committing it. That is
not tampering.

What the anchor does not protect against: anyone who holds the ``audit-anchor``
key and can write the store (they can sign a new checkpoint); records written
after the last checkpoint and removed before the next one; and deleting every
checkpoint both from the store and from MLflow.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from stratum_ml.config import Settings
from stratum_ml.io import process_lock
from stratum_ml.serving.audit import (
    GENESIS_HASH,
    INTENT_PREFIX,
    INTENT_STATUS,
    AuditLog,
    _Broken,
    _check_line,
)
from stratum_ml.signing import load_signing_key, sign, signature_ok
from stratum_ml.store import Store
from stratum_ml.store.switch import event_name
from stratum_ml.store.tables import (
    AuditCheckpointRow,
    DecisionRow,
    PauseEventRow,
    VisitOutcomeRow,
)

__all__ = [
    "ANCHOR_PURPOSE",
    "MLFLOW_TAG",
    "PAUSE_EVENT_PREFIX",
    "REASONS",
    "AnchorReport",
    "Checkpoint",
    "DailyAnchor",
    "log_id",
    "mlflow_checkpoints",
    "newest_checkpoint",
    "run_checkpointer",
    "stored_checkpoints",
    "take_checkpoint",
    "verify_anchored",
]

#: the signing key's purpose (:func:`stratum_ml.signing.load_signing_key`)
ANCHOR_PURPOSE = "audit-anchor"
#: row id of a pause event in an intent record: this prefix and its
#: :func:`~stratum_ml.store.switch.event_name`
PAUSE_EVENT_PREFIX = "pause-event-"
#: why a checkpoint was taken
REASONS = ("start", "stop", "daily", "run", "manual")
#: MLflow tag of a scoring run that holds the checkpoint taken with it
MLFLOW_TAG = "stratum.audit_checkpoint"
#: default seconds between two checkpoints while the service runs
DAILY_SECONDS = 24 * 3600.0

log = logging.getLogger(__name__)


def log_id(path: str | os.PathLike[str]) -> str:
    """How checkpoints name a log: its resolved path."""
    return str(Path(path).resolve())


@dataclass(frozen=True)
class Checkpoint:
    """A signed record of an audit log's head.

    Attributes
    ----------
    log
        The log's resolved path (:func:`log_id`).
    head_seq, head_hash
        ``seq`` and ``hash`` of the log's last record when taken (0 and
        :data:`~stratum_ml.serving.audit.GENESIS_HASH` for an empty log).
    taken_at
        When, in UTC.
    reason
        One of :data:`REASONS`.
    signature
        HMAC-SHA256 of the other fields (:meth:`body`).
    """

    log: str
    head_seq: int
    head_hash: str
    taken_at: dt.datetime
    reason: str
    signature: str

    def body(self) -> dict[str, Any]:
        """The signed fields."""
        return {
            "log": self.log,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "taken_at": self.taken_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "reason": self.reason,
        }

    def to_json(self) -> str:
        """The checkpoint as JSON (its :meth:`body` and its signature)."""
        return json.dumps(self.body() | {"signature": self.signature}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Read :meth:`to_json`; ValueError when it is not a checkpoint."""
        try:
            data = json.loads(text)
            return cls(
                log=str(data["log"]),
                head_seq=int(data["head_seq"]),
                head_hash=str(data["head_hash"]),
                taken_at=dt.datetime.fromisoformat(str(data["taken_at"])),
                reason=str(data["reason"]),
                signature=str(data["signature"]),
            )
        except (ValueError, TypeError, KeyError):
            raise ValueError("not an audit checkpoint") from None

    def describe(self) -> str:
        """A short name for messages: when and why it was taken."""
        return f"the checkpoint taken at {self.taken_at:%Y-%m-%d %H:%M:%S} UTC ({self.reason})"


def _signed(log_name: str, seq: int, head_hash: str, reason: str, key: bytes) -> Checkpoint:
    unsigned = Checkpoint(log_name, seq, head_hash, dt.datetime.now(dt.UTC), reason, "")
    return Checkpoint(**{**unsigned.__dict__, "signature": sign(key, unsigned.body())})


def take_checkpoint(
    audit: AuditLog, store: Store, reason: str, *, key: bytes | None = None
) -> Checkpoint:
    """Sign the log's head now and store the checkpoint in the operational store.

    Parameters
    ----------
    audit
        The open audit log.
    store
        The operational store (table ``audit_checkpoints``).
    reason
        One of :data:`REASONS`.
    key
        The signing key; default: the ``audit-anchor`` key (created when missing).

    Returns
    -------
    Checkpoint
        As stored.

    Raises
    ------
    stratum_ml.serving.audit.AuditLogError
        When the log's last line cannot be read as a record.
    stratum_ml.signing.SigningKeyError
        When the key cannot be read or created safely.
    """
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}, not {reason!r}")
    key = key if key is not None else load_signing_key(ANCHOR_PURPOSE)
    seq, head_hash = audit.head()
    checkpoint = _signed(log_id(audit.path), seq, head_hash, reason, key)
    with store.transaction() as session:
        session.add(
            AuditCheckpointRow(
                log=checkpoint.log,
                head_seq=checkpoint.head_seq,
                head_hash=checkpoint.head_hash,
                taken_at=checkpoint.taken_at,
                reason=checkpoint.reason,
                signature=checkpoint.signature,
            )
        )
    return checkpoint


def stored_checkpoints(store: Store, path: str | os.PathLike[str]) -> list[Checkpoint]:
    """Every checkpoint of the log at ``path`` in the operational store, oldest first."""
    with store.transaction() as session:
        rows = session.scalars(
            select(AuditCheckpointRow)
            .where(AuditCheckpointRow.log == log_id(path))
            .order_by(AuditCheckpointRow.seq)
        )
        return [
            Checkpoint(r.log, r.head_seq, r.head_hash, r.taken_at, r.reason, r.signature)
            for r in rows
        ]


def newest_checkpoint(store: Store, path: str | os.PathLike[str]) -> Checkpoint | None:
    """The newest checkpoint of the log at ``path`` in the operational store, if any."""
    with store.transaction() as session:
        r = session.scalars(
            select(AuditCheckpointRow)
            .where(AuditCheckpointRow.log == log_id(path))
            .order_by(AuditCheckpointRow.seq.desc())
            .limit(1)
        ).first()
        if r is None:
            return None
        return Checkpoint(r.log, r.head_seq, r.head_hash, r.taken_at, r.reason, r.signature)


def mlflow_checkpoints(settings: Settings, path: str | os.PathLike[str]) -> list[Checkpoint]:
    """Every checkpoint of the log at ``path`` in a run of the MLflow experiment ``scoring``.

    A tag that is not a checkpoint is returned as one with an empty signature, so that
    :func:`verify_anchored` reports it as not verifying.
    """
    from stratum_ml.model.store import client_for, configure_mlflow
    from stratum_ml.runs.tracking import SCORING_EXPERIMENT

    configure_mlflow(settings)
    client = client_for(settings)
    experiment = client.get_experiment_by_name(SCORING_EXPERIMENT)
    if experiment is None:
        return []
    found: list[Checkpoint] = []
    token: str | None = None
    while True:
        page = client.search_runs([experiment.experiment_id], max_results=1000, page_token=token)
        for run in page:
            text = run.data.tags.get(MLFLOW_TAG)
            if text is None:
                continue
            try:
                checkpoint = Checkpoint.from_json(text)
            except ValueError:
                epoch = dt.datetime.fromtimestamp(run.info.start_time / 1000, dt.UTC)
                checkpoint = Checkpoint(log_id(path), 0, GENESIS_HASH, epoch, "run", "")
            if checkpoint.log == log_id(path):
                found.append(checkpoint)
        token = page.token
        if not token:
            break
    return sorted(found, key=lambda c: c.taken_at)


@dataclass
class AnchorReport:
    """The outcome of :func:`verify_anchored`.

    Attributes
    ----------
    n_records
        Intact records at the start of the log.
    chain_problem
        Where and how the chain breaks; empty when it is intact.
    problems
        Tampering the checkpoints show, one sentence each.
    not_committed
        Intent records whose row is not in the operational store, one sentence each.
    n_checkpoints
        Checkpoints checked (store and MLflow together).
    latest
        The newest checkpoint whose signature verifies, if any.
    last_hash
        ``hash`` of the last intact record.
    """

    n_records: int
    chain_problem: str
    problems: list[str] = field(default_factory=list)
    not_committed: list[str] = field(default_factory=list)
    n_checkpoints: int = 0
    latest: Checkpoint | None = None
    last_hash: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        """True when the chain is intact and agrees with every checkpoint."""
        return not self.chain_problem and not self.problems


@dataclass
class _Scan:
    n_records: int = 0
    last_hash: str = GENESIS_HASH
    problem: str = ""
    hashes: dict[int, str] = field(default_factory=dict)
    intents: dict[str, tuple[int, str]] = field(default_factory=dict)  # row id -> (seq, endpoint)


def _scan(path: Path, wanted: set[int]) -> _Scan:
    """Check the chain, keeping the hashes at ``wanted`` seqs and the intent records."""
    scan = _Scan()
    if not path.exists():
        scan.problem = f"there is no audit log at {path}"
        return scan
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                scan.last_hash = _check_line(raw, scan.n_records + 1, scan.last_hash)
            except _Broken as exc:
                scan.problem = f"line {line_no}: {exc}"
                return scan
            scan.n_records += 1
            if scan.n_records in wanted:
                scan.hashes[scan.n_records] = scan.last_hash
            if b'"status":0,' in raw or b'"status":0}' in raw:
                record = json.loads(raw)
                detail = str(record["detail"])
                if record["status"] == INTENT_STATUS and detail.startswith(INTENT_PREFIX):
                    row_id = detail[len(INTENT_PREFIX) :]
                    scan.intents[row_id] = (scan.n_records, str(record["endpoint"]))
    return scan


def _missing_rows(store: Store, row_ids: Sequence[str]) -> set[str]:
    """Which of ``row_ids`` are not a stored decision, visit outcome or pause event."""
    found: set[str] = set()
    with store.transaction() as session:
        for start in range(0, len(row_ids), 500):
            chunk = list(row_ids[start : start + 500])
            found.update(
                session.scalars(
                    select(DecisionRow.decision_id).where(DecisionRow.decision_id.in_(chunk))
                )
            )
            found.update(
                session.scalars(
                    select(VisitOutcomeRow.inspection_id).where(
                        VisitOutcomeRow.inspection_id.in_(chunk)
                    )
                )
            )
        # pause events are few: one query for all of them
        named = [r.removeprefix(PAUSE_EVENT_PREFIX) for r in row_ids]
        heads = [n.split("-")[0] for r, n in zip(row_ids, named, strict=True) if n != r]
        seqs = [int(h) for h in heads if h.isdigit()]
        for row in session.scalars(select(PauseEventRow).where(PauseEventRow.seq.in_(seqs))):
            found.add(f"{PAUSE_EVENT_PREFIX}{event_name(row)}")
    return set(row_ids) - found


def verify_anchored(
    path: str | os.PathLike[str],
    checkpoints: Iterable[Checkpoint],
    *,
    key: bytes,
    store: Store | None = None,
) -> AnchorReport:
    """Check an audit log's chain, and the log against its checkpoints and the store.

    Parameters
    ----------
    path
        The audit log (a missing log is checked as an empty one, and said so).
    checkpoints
        The log's checkpoints (:func:`stored_checkpoints`, :func:`mlflow_checkpoints`).
    key
        The ``audit-anchor`` signing key.
    store
        The operational store, to report intents whose row is missing; None to skip that.

    Returns
    -------
    AnchorReport
    """
    path = Path(path)
    checks = list(checkpoints)
    scan = _scan(path, {c.head_seq for c in checks})
    report = AnchorReport(
        n_records=scan.n_records,
        chain_problem=scan.problem,
        n_checkpoints=len(checks),
        last_hash=scan.last_hash,
    )
    seen: set[tuple[int, str, str]] = set()
    for checkpoint in sorted(checks, key=lambda c: c.taken_at):
        if not signature_ok(key, checkpoint.body(), checkpoint.signature):
            report.problems.append(
                f"{checkpoint.describe()} does not verify with the audit-anchor key: it was "
                "forged or changed where it is kept"
            )
            continue
        report.latest = checkpoint
        if (
            checkpoint.head_seq == 0
            or (
                checkpoint.head_seq,
                checkpoint.head_hash,
                checkpoint.log,
            )
            in seen
        ):
            continue
        seen.add((checkpoint.head_seq, checkpoint.head_hash, checkpoint.log))
        have = scan.hashes.get(checkpoint.head_seq)
        if have is None and scan.problem:
            continue  # the chain breaks before it; that is reported already
        if have is None:
            report.problems.append(
                f"the log holds {scan.n_records} record(s), but {checkpoint.describe()} saw "
                f"record {checkpoint.head_seq}: records were removed from its end, or it was "
                "emptied or replaced"
            )
        elif have != checkpoint.head_hash:
            report.problems.append(
                f"record {checkpoint.head_seq} is not the one {checkpoint.describe()} saw: "
                "the log was rewritten up to there with its hashes recomputed"
            )
    if store is not None and scan.intents:
        missing = _missing_rows(store, list(scan.intents))
        for row_id in sorted(missing, key=lambda r: scan.intents[r][0]):
            seq, endpoint = scan.intents[row_id]
            report.not_committed.append(
                f"record {seq}: the {endpoint} row {row_id} was announced but not committed "
                "(a crash or a refused commit between the two; nothing was stored)"
            )
    return report


def run_checkpointer(audit: AuditLog, store: Store) -> Callable[[], tuple[str, str]]:
    """For :func:`stratum_ml.runs.create_run`: take a ``run`` checkpoint, as an MLflow tag."""

    def checkpoint() -> tuple[str, str]:
        return MLFLOW_TAG, take_checkpoint(audit, store, "run").to_json()

    return checkpoint


class DailyAnchor:
    """The service's checkpoints: one at start, one at least daily, one at a clean stop.

    Several workers of one service share the log and the store, so they do not
    each sign the same head: under a file lock beside the log, a worker skips its
    ``start`` checkpoint when the newest checkpoint of the log is another worker's
    ``start`` of the same head, younger than ``interval_s``, and its ``daily`` one when
    the newest is younger than half of ``interval_s``. Each worker takes its ``stop`` checkpoint
    (the last one to stop signs the final head).

    Parameters
    ----------
    audit, store
        The service's audit log and operational store.
    interval_s
        Seconds between two checkpoints while running (default a day).
    """

    def __init__(self, audit: AuditLog, store: Store, interval_s: float = DAILY_SECONDS) -> None:
        self.audit, self.store, self.interval_s = audit, store, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="audit-anchor", daemon=True)
        self._lock_path = audit.path.with_name(audit.path.name + ".anchor.lock")

    def _take(self, reason: str) -> Checkpoint | None:
        """Take a checkpoint unless another worker just took the same one; None if skipped."""
        with process_lock(self._lock_path):
            newest = newest_checkpoint(self.store, self.audit.path)
            if newest is not None and reason != "stop":
                age = (dt.datetime.now(dt.UTC) - newest.taken_at).total_seconds()
                same_head = (newest.head_seq, newest.head_hash) == self.audit.head()
                another_start = newest.reason == "start" and same_head
                if (reason == "start" and another_start and age < self.interval_s) or (
                    reason == "daily" and age < self.interval_s / 2
                ):
                    return None
            return take_checkpoint(self.audit, self.store, reason)

    def start(self) -> Checkpoint | None:
        """Take the ``start`` checkpoint (None: another worker's holds this head) and start
        the periodic ones.

        Raises
        ------
        stratum_ml.serving.audit.AuditLogError, stratum_ml.signing.SigningKeyError
            When the checkpoint cannot be taken (the service should not start).
        """
        checkpoint = self._take("start")
        self._thread.start()
        return checkpoint

    def stop(self) -> Checkpoint | None:
        """Stop the periodic checkpoints and take the ``stop`` checkpoint."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        return self._take("stop")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._take("daily")
            except Exception:  # keep serving; the next one may succeed
                log.exception("the periodic audit checkpoint could not be taken")
