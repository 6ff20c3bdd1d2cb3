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

Visits by design (:mod:`stratum_ml.runs.plan`): an outcome may name the scoring
run whose visit plan it answers (``run_id``); the address must then be a pick of
that plan and the visit not before the run's date. Its pick kind and inclusion
probability come from the plan, never from the request, so ``reason:
random_sample`` can no longer be typed in (:data:`REFUSED_REASONS`): the only
random visits are a plan's exploration picks, which the visitor cannot tell
apart. An outcome without ``run_id`` is stored as before and is never used as a
design visit. :meth:`OutcomeStore.record_many` stores a whole file
(``stratum feedback import``) in one transaction: all of it or nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
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
from stratum_ml.store.tables import (
    ScoringRunRow,
    VisitOutcomeRow,
    VisitPlanItemRow,
    VisitPlanRow,
)

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
    "run_id",
)
#: reasons that may not be typed in, and why
REFUSED_REASONS = {
    "random_sample": (
        "reason 'random_sample' can no longer be typed in: random visits are the exploration "
        "picks of a run's visit plan; give the plan's run_id (its pick and inclusion "
        "probability come from the plan) and the reason the visit was made under (e.g. "
        "risk_model)"
    ),
}


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
    run_id: str | None = None
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
            run_id=row.run_id,
        )


def _plan_errors(session: Session, run_id: str, address_id: str, day: dt.date) -> list[str]:
    """Why an outcome cannot answer the visit plan of ``run_id`` (empty when it can)."""
    as_of = session.scalar(select(ScoringRunRow.as_of).where(ScoringRunRow.run_id == run_id))
    if as_of is None:
        return [f"run_id: no scoring run {run_id}"]
    if session.scalar(select(VisitPlanRow.run_id).where(VisitPlanRow.run_id == run_id)) is None:
        return [f"run_id: run {run_id} has no visit plan"]
    problems = []
    pick = session.scalar(
        select(VisitPlanItemRow.pick).where(
            VisitPlanItemRow.run_id == run_id, VisitPlanItemRow.address_id == address_id
        )
    )
    if pick is None:
        problems.append(f"address_id: {address_id} is not in the visit plan of run {run_id}")
    if day < as_of:
        problems.append(f"inspected_at: {day} is before the run's date {as_of}")
    return problems


def _contract_errors(row: RecordedOutcome) -> list[str]:
    """The contract's ``inspections`` rules broken by one outcome."""
    return _contract_errors_of([row])


def _contract_errors_of(rows: Sequence[RecordedOutcome]) -> list[str]:
    """The contract's ``inspections`` rules broken by any of ``rows``, checked as one table."""
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
            for row in rows
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
        run_id: str | None = None,
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
        run_id
            The scoring run whose visit plan the visit answers; the address must be a
            pick of it. None: not a design visit (never used by design-based estimates).

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
        problems = []
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
            run_id=run_id,
        )
        problems.extend(self._problems(stored, today or dt.date.today()))
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

    def _problems(
        self, row: RecordedOutcome, today: dt.date, *, contract: bool = True
    ) -> list[str]:
        """Every rule one outcome breaks (the register's, the plan's and, unless ``contract``
        is False because the caller checked it, the contract's)."""
        problems = []
        if row.address_id not in self._addresses:
            problems.append(f"address_id: {row.address_id} is not in the address register")
        if row.inspected_at > today:
            problems.append(f"inspected_at: {row.inspected_at} is in the future (today is {today})")
        if row.reason in REFUSED_REASONS:
            problems.append(f"reason: {REFUSED_REASONS[row.reason]}")
        if contract:
            problems.extend(_contract_errors(row))
        if row.run_id is not None:
            with self.store.transaction() as session:
                problems.extend(_plan_errors(session, row.run_id, row.address_id, row.inspected_at))
        return problems

    def record_many(
        self,
        rows: pd.DataFrame,
        *,
        recorded_by: str,
        today: dt.date | None = None,
        source: str = "the file",
    ) -> list[RecordedOutcome]:
        """Check a table of visit outcomes and store all of them in one transaction, or none.

        Parameters
        ----------
        rows
            The contract's ``inspections`` columns (``inspection_id`` may be empty: the
            store hands out one) plus ``run_id`` (may be empty: not a design visit),
            as text.
        recorded_by
            Who imports (a user name).
        today
            The current date (default: the local date now).
        source
            How errors name where the rows came from (a file name).

        Returns
        -------
        list of RecordedOutcome
            The stored rows, in the order given.

        Raises
        ------
        OutcomeError
            When any row breaks a rule, the same visit appears twice in the rows, or it
            is already stored; the message names the line (2 = the first row after the
            header) and the rule, never the row's values beyond the address id.
        """
        missing = [c for c in (*INSPECTIONS.column_names, "run_id") if c not in rows.columns]
        if missing:
            raise OutcomeError(f"{source}: missing column(s) {', '.join(missing)}")
        today = today or dt.date.today()
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        problems: list[tuple[int, str]] = []  # (line, problem)
        parsed: list[RecordedOutcome] = []
        lines: list[int] = []
        seen: dict[tuple[object, ...], int] = {}
        for line, record in enumerate(rows.astype(object).to_dict("records"), 2):
            raw = {str(k): v for k, v in record.items()}

            def text(name: str, values: dict[str, object] = raw) -> str | None:
                value = values.get(name)
                if value is None or (isinstance(value, float) and pd.isna(value)):
                    return None
                return str(value).strip() or None

            try:
                day = dt.date.fromisoformat(text("inspected_at") or "")
            except ValueError:
                problems.append((line, "inspected_at is not a date YYYY-MM-DD"))
                continue
            row = RecordedOutcome(
                inspection_id=text("inspection_id") or f"{ID_PREFIX}{uuid.uuid4().hex}",
                address_id=text("address_id") or "",
                inspected_at=day,
                reason=text("reason") or "",
                outcome=text("outcome") or "",
                violation_type=text("violation_type"),
                recorded_at=now,
                recorded_by=recorded_by,
                run_id=text("run_id"),
            )
            problems.extend((line, p) for p in self._problems(row, today, contract=False))
            key = _visit_key(row)
            if key in seen:
                problems.append((line, f"the same visit as line {seen[key]}"))
            seen[key] = line
            parsed.append(row)
            lines.append(line)
        # the contract is checked on the whole table once; only when it fails is each row
        # checked alone, to name the lines (a file of hundreds of visits took a check each)
        if parsed and _contract_errors_of(parsed):
            for line, row in zip(lines, parsed, strict=True):
                problems.extend((line, p) for p in _contract_errors(row))
        if problems:
            named = (f"line {line}: {p}" for line, p in sorted(problems, key=lambda lp: lp[0]))
            raise OutcomeError(f"{source}: nothing was stored: " + "; ".join(named))
        try:
            with self.store.transaction() as session:
                for line, row in enumerate(parsed, 2):
                    same = _same_visit(session, row)
                    if same is not None:
                        raise OutcomeError(
                            f"{source}: nothing was stored: line {line}: this visit outcome is "
                            f"already stored as {same}"
                        )
                    session.add(VisitOutcomeRow(**{f: getattr(row, f) for f in _ROW_FIELDS}))
        except IntegrityError:
            raise OutcomeError(
                f"{source}: nothing was stored: an inspection_id or visit is already stored"
            ) from None
        return parsed

    def _write(self, stored: RecordedOutcome, idempotency_key: str | None) -> RecordedOutcome:
        """Check and add one outcome in one transaction; once more if a racing writer won."""
        for attempt in range(2):
            try:
                with self.store.transaction() as session:
                    if idempotency_key is not None:
                        first = _by_key(session, idempotency_key)
                        if first is not None:
                            return self._replay(first, stored)
                    same = _same_visit(session, stored)
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
        same = (
            "address_id",
            "inspected_at",
            "reason",
            "outcome",
            "violation_type",
            "recorded_by",
            "run_id",
        )
        if any(getattr(first, name) != getattr(again, name) for name in same):
            raise reused("feedback")
        return replace(RecordedOutcome.of(first), replayed=True)


def _visit_key(row: RecordedOutcome) -> tuple[object, ...]:
    return (row.address_id, row.inspected_at, row.reason, row.outcome, row.violation_type or "")


def _same_visit(session: Session, row: RecordedOutcome) -> str | None:
    """The inspection id of the same visit already stored, if any."""
    return session.scalar(
        select(VisitOutcomeRow.inspection_id).where(
            VisitOutcomeRow.address_id == row.address_id,
            VisitOutcomeRow.inspected_at == row.inspected_at,
            VisitOutcomeRow.reason == row.reason,
            VisitOutcomeRow.outcome == row.outcome,
            func.coalesce(VisitOutcomeRow.violation_type, "") == (row.violation_type or ""),
        )
    )


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
