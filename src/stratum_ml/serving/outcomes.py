"""The outcomes store: visit outcomes recorded through the service, for the next training.

A case handler records what a home visit found (``feedback`` endpoint). Each
outcome becomes one row shaped like the contract's ``inspections`` table and is
checked by the same rules (:func:`stratum_ml.sources.validate_tables`: reason,
outcome and violation-type domains, violation type only with a violation), plus
two rules the contract cannot state for a whole export: the address must be in
the address register the service loaded, and the visit date may not lie in the
future.

The rows live in the operational store's ``visit_outcomes`` table
(:mod:`stratum_ml.store.tables`). Rows are only ever added, each in its own
transaction; the same visit (address, date, reason, outcome, violation type) is
stored once (:class:`DuplicateOutcome`; the database enforces it, also between
workers). Besides the contract columns every row records when it was stored
and by which API key id (``recorded_at``, ``recorded_by``), so that a label can
be traced to who entered it. With an audit log, every new row is announced in it by an intent record
(:meth:`stratum_ml.serving.audit.AuditLog.append_intent`) after the database
accepted it and before it is committed, so a crash never leaves a stored row
without its audit record (see :mod:`stratum_ml.serving.decisions`).

A request may carry an idempotency key
(:mod:`stratum_ml.store.idempotency`): sent again, it stores nothing and is
answered with the first outcome.

:func:`read_outcomes` gives the rows back as a normalised ``inspections`` table,
ready to be appended to the source folder's inspections.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass, replace

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratum_ml.serving.audit import AuditLog
from stratum_ml.sources.contract import TABLES
from stratum_ml.sources.tables import normalise_table
from stratum_ml.sources.validate import validate_tables
from stratum_ml.store import Store
from stratum_ml.store.idempotency import check_idempotency_key, reused
from stratum_ml.store.tables import VisitOutcomeRow

INSPECTIONS = TABLES["inspections"]
#: provenance columns stored after the contract columns
PROVENANCE_COLUMNS = ("recorded_at", "recorded_by")
STORE_COLUMNS = (*INSPECTIONS.column_names, *PROVENANCE_COLUMNS)
#: prefix of the inspection ids the service hands out (never a BSN: not 9 digits)
ID_PREFIX = "svc-"
_ROW_FIELDS = (
    "inspection_id",
    "address_id",
    "inspected_at",
    "reason",
    "outcome",
    "violation_type",
    "recorded_at",
    "recorded_by",
)


class OutcomeError(ValueError):
    """A visit outcome that breaks a rule; nothing was stored."""


class DuplicateOutcome(OutcomeError):
    """The same visit (address, date, reason, outcome, violation type) is already stored."""

    def __init__(self, message: str, inspection_id: str) -> None:
        super().__init__(message)
        self.inspection_id = inspection_id


@dataclass(frozen=True)
class RecordedOutcome:
    """One stored visit outcome; ``replayed`` is True when a retried request got it back."""

    inspection_id: str
    address_id: str
    inspected_at: dt.date
    reason: str
    outcome: str
    violation_type: str | None
    recorded_at: dt.datetime
    recorded_by: str
    replayed: bool = False

    @classmethod
    def of(cls, row: VisitOutcomeRow) -> RecordedOutcome:
        """From a stored row."""
        return cls(
            inspection_id=row.inspection_id,
            address_id=row.address_id,
            inspected_at=row.inspected_at,
            reason=row.reason,
            outcome=row.outcome,
            violation_type=row.violation_type,
            recorded_at=row.recorded_at,
            recorded_by=row.recorded_by,
        )


def _contract_errors(row: RecordedOutcome) -> list[str]:
    """The contract's ``inspections`` rules broken by one outcome."""
    text = pd.DataFrame(
        [
            {
                "inspection_id": row.inspection_id,
                "address_id": row.address_id,
                "inspected_at": row.inspected_at.isoformat(),
                "reason": row.reason,
                "outcome": row.outcome,
                "violation_type": row.violation_type,
            }
        ],
        columns=list(INSPECTIONS.column_names),
    )
    report = validate_tables({"inspections": text})
    return [
        f"{f.column}: breaks the rule '{f.rule}'" for f in report.errors if f.table == "inspections"
    ]


class OutcomeStore:
    """Append-only store of visit outcomes, checked against the contract.

    Parameters
    ----------
    store
        The opened operational store (:func:`stratum_ml.store.open_store`).
    address_ids
        The address register (``addresses.address_id``) outcomes must refer to.
    audit
        The audit log that gets an intent record of every new row before it is
        committed; None for none (the command line, tests).
    """

    def __init__(
        self, store: Store, address_ids: Collection[str], audit: AuditLog | None = None
    ) -> None:
        self.store = store
        self.audit = audit
        self._addresses = frozenset(address_ids)

    def record(
        self,
        *,
        address_id: str,
        inspected_at: dt.date,
        reason: str,
        outcome: str,
        violation_type: str | None,
        recorded_by: str,
        today: dt.date | None = None,
        idempotency_key: str | None = None,
    ) -> RecordedOutcome:
        """Check one visit outcome and add it to the store, in one transaction.

        Parameters
        ----------
        address_id
            The visited address; must be in the address register.
        inspected_at
            Day of the visit; not after ``today``.
        reason, outcome, violation_type
            As in the contract's ``inspections`` table.
        recorded_by
            Key id of the caller (never the key).
        today
            The current date (default: the local date now).
        idempotency_key
            The client's key for this request: sent again, nothing is stored and the
            first outcome is returned (with ``replayed`` True).

        Returns
        -------
        RecordedOutcome
            The row as stored, with its new ``inspection_id``.

        Raises
        ------
        OutcomeError
            When a rule is broken; the message names every broken rule.
        DuplicateOutcome
            When the same visit is already stored (without an idempotency key, or with
            another one); nothing is added.
        IdempotencyKeyReused
            When the key came before with a different request.
        """
        today = today or dt.date.today()
        problems = []
        if address_id not in self._addresses:
            problems.append(f"address_id: {address_id} is not in the address register")
        if inspected_at > today:
            problems.append(f"inspected_at: {inspected_at} is in the future (today is {today})")
        if idempotency_key is not None:
            try:
                check_idempotency_key(idempotency_key)
            except ValueError as exc:
                problems.append(str(exc))
        stored = RecordedOutcome(
            inspection_id=f"{ID_PREFIX}{uuid.uuid4().hex}",
            address_id=address_id,
            inspected_at=inspected_at,
            reason=reason,
            outcome=outcome,
            violation_type=violation_type,
            recorded_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
            recorded_by=recorded_by,
        )
        problems.extend(_contract_errors(stored))
        if problems:
            raise OutcomeError("the visit outcome was not stored: " + "; ".join(problems))
        try:
            return self._write(stored, idempotency_key)
        except DuplicateOutcome:
            # a racing retry of the same request may have stored it since our checks ran
            if idempotency_key is not None:
                with self.store.transaction() as session:
                    first = _by_key(session, idempotency_key)
                    if first is not None:
                        return self._replay(first, stored)
            raise

    def _write(self, stored: RecordedOutcome, idempotency_key: str | None) -> RecordedOutcome:
        """Check and add one outcome in one transaction; once more if a racing writer won."""
        for attempt in range(2):
            try:
                with self.store.transaction() as session:
                    if idempotency_key is not None:
                        first = _by_key(session, idempotency_key)
                        if first is not None:
                            return self._replay(first, stored)
                    same = session.scalar(
                        select(VisitOutcomeRow.inspection_id).where(
                            VisitOutcomeRow.address_id == stored.address_id,
                            VisitOutcomeRow.inspected_at == stored.inspected_at,
                            VisitOutcomeRow.reason == stored.reason,
                            VisitOutcomeRow.outcome == stored.outcome,
                            func.coalesce(VisitOutcomeRow.violation_type, "")
                            == (stored.violation_type or ""),
                        )
                    )
                    if same is not None:
                        raise DuplicateOutcome(
                            f"this visit outcome is already stored as {same}; nothing was added",
                            same,
                        )
                    session.add(
                        VisitOutcomeRow(
                            **{f: getattr(stored, f) for f in _ROW_FIELDS},
                            idempotency_key=idempotency_key,
                        )
                    )
                    session.flush()  # the database accepts the row before it is announced
                    if self.audit is not None:
                        self.audit.append_intent(
                            key_id=stored.recorded_by,
                            role=None,
                            endpoint="feedback",
                            address_ids=[stored.address_id],
                            model_version=None,
                            row_id=stored.inspection_id,
                        )
                return stored
            except IntegrityError:
                # another writer stored the same visit or key first; the checks now see it
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _replay(first: VisitOutcomeRow, again: RecordedOutcome) -> RecordedOutcome:
        same = ("address_id", "inspected_at", "reason", "outcome", "violation_type", "recorded_by")
        if any(getattr(first, name) != getattr(again, name) for name in same):
            raise reused("feedback")
        return replace(RecordedOutcome.of(first), replayed=True)


def _by_key(session: Session, key: str) -> VisitOutcomeRow | None:
    """The outcome stored with an idempotency key, if any."""
    return session.scalar(select(VisitOutcomeRow).where(VisitOutcomeRow.idempotency_key == key))


def read_outcomes(store: Store, *, provenance: bool = False) -> pd.DataFrame:
    """The stored visit outcomes as a normalised ``inspections`` table.

    Parameters
    ----------
    store
        The operational store.
    provenance
        Also return ``recorded_at`` (UTC timestamp) and ``recorded_by`` after the
        contract columns.

    Returns
    -------
    pandas.DataFrame
        One row per stored outcome, oldest first, with the contract columns and the
        dtypes of :mod:`stratum_ml.sources.tables`, so the frame can be concatenated
        with a loaded source folder's ``inspections``; empty (with the columns) when
        none.
    """
    with store.transaction() as session:
        rows = list(session.scalars(select(VisitOutcomeRow).order_by(VisitOutcomeRow.seq)))
    text = pd.DataFrame(
        [
            {
                "inspection_id": r.inspection_id,
                "address_id": r.address_id,
                "inspected_at": r.inspected_at.isoformat(),
                "reason": r.reason,
                "outcome": r.outcome,
                "violation_type": r.violation_type,
            }
            for r in rows
        ],
        columns=list(INSPECTIONS.column_names),
        dtype="object",
    )
    table = normalise_table(text, INSPECTIONS)
    if provenance:
        table["recorded_at"] = pd.to_datetime([r.recorded_at for r in rows], utc=True)
        table["recorded_by"] = pd.Series([r.recorded_by for r in rows], dtype="string")
    return table
