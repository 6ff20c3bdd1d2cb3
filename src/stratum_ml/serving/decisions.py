"""The decisions store: what an analyst decided about an address on the priority list.

The model proposes; a person decides. An analyst records, per address, whether
it is passed on for a visit, declined, or needs more information, and why
(``decision`` endpoint). Each decision is one row of the operational store's
``decisions`` table (:mod:`stratum_ml.store.tables`) with what the analyst saw
when deciding (the model version, the scoring date, the address's rank and
probability; while the model is paused its rank in the fallback ranking and no
probability, as nothing of the model is shown then) and who decided: the API key
id, its role and its name, never the key.

Rows are only ever added, in one transaction each. The decisions on one
address form a chain: a decision on an address that already has an *open*
decision (one no later decision supersedes) must name it in ``supersedes``;
without that it is refused (:class:`DecisionConflict`, HTTP 409), and so is
superseding a decision that is no longer open. A decision that supersedes
another makes it closed; both are kept. The database enforces the chain, so
two workers racing cannot both add an open decision.

With an audit log, every new row is announced in it by an intent record
(:meth:`stratum_ml.serving.audit.AuditLog.append_intent`) inside the row's
transaction, after the database accepted the row (flush) and before the commit:
a crash between the two leaves an intent without a row, which ``stratum audit
verify`` reports as not committed, never a stored row without its audit record.

A request may carry an idempotency key (:mod:`stratum_ml.store.idempotency`):
sent again, it stores nothing and is answered with the first decision.

A decision's reason is a code from the fixed list
:data:`~stratum_ml.store.tables.DECISION_REASONS` (the one list the API, the web
app and the store use), plus an optional note in the analyst's words (required
with ``other``). The store holds address-level facts only, and the note is the
one field a person could write person data into, so a note that looks like it
holds some (a BSN in any notation, an e-mail address, a phone number, a date of
birth, an IBAN) is refused, as is text a spreadsheet would run as a formula
(:func:`stratum_ml.store.free_text.reason_problems`).

:meth:`DecisionStore.history` and :func:`read_decisions` read the decisions back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratum_ml.serving.audit import AuditLog
from stratum_ml.store import Store
from stratum_ml.store.free_text import reason_problems
from stratum_ml.store.idempotency import check_idempotency_key, reused
from stratum_ml.store.tables import (
    DECISION_REASON_CODES,
    DECISION_REASONS,
    DECISIONS,
    DecisionRow,
)

__all__ = [
    "DECISIONS",
    "DECISION_REASONS",
    "DECISION_REASON_CODES",
    "ID_PREFIX",
    "MAX_REASON_LENGTH",
    "STORE_COLUMNS",
    "DecisionConflict",
    "DecisionError",
    "DecisionStore",
    "RecordedDecision",
    "note_problems",
    "read_decisions",
    "reason_problems",
    "reason_words",
]

STORE_COLUMNS = (
    "decision_id",
    "address_id",
    "decision",
    "reason",
    "note",
    "decided_at",
    "decided_by",
    "model_version",
    "scoring_date",
    "rank_at_decision",
    "probability_at_decision",
    "role",
    "key_name",
    "supersedes",
)
#: prefix of the decision ids the service hands out
ID_PREFIX = "dec-"
#: longest note accepted
MAX_REASON_LENGTH = 500


def reason_words(reason: str, note: str | None, language: str = "en") -> str:
    """A decision's reason in words: the code's words in ``language``, then the note.

    Examples
    --------
    >>> reason_words("recent_reports", "two this month")
    'recent reports confirm the picture: two this month'
    """
    words = DECISION_REASONS.get(reason, {}).get(language, reason)
    return f"{words}: {note}" if note else words


def note_problems(reason: str, note: str | None) -> list[str]:
    """Why a reason code and note may not be stored (empty when they may)."""
    problems = []
    if reason not in DECISION_REASONS:
        problems.append(f"reason: must be one of {', '.join(DECISION_REASONS)}")
    if note is None:
        if reason == "other":
            problems.append("note: required with the reason 'other'")
        return problems
    if not note.strip() or len(note) > MAX_REASON_LENGTH:
        problems.append(f"note: must hold 1 to {MAX_REASON_LENGTH} characters")
    problems.extend(f"note: {p}" for p in reason_problems(note))
    return problems


class DecisionError(ValueError):
    """A decision that breaks a rule; nothing was stored."""


class DecisionConflict(DecisionError):
    """A decision that clashes with the address's open decision (HTTP 409); nothing was stored."""


@dataclass(frozen=True)
class RecordedDecision:
    """One stored decision.

    ``reason`` is a code of :data:`DECISION_REASONS`, ``note`` the analyst's own
    words (None when none); ``superseded_by`` is the id of the decision that
    replaced it (None while it is open); ``run_id`` the scoring run it was taken on
    (None before runs were served);
    ``replayed`` is True when a retried request was answered with it.
    """

    decision_id: str
    address_id: str
    decision: str
    reason: str
    note: str | None
    decided_at: dt.datetime
    decided_by: str
    role: str | None
    key_name: str | None
    model_version: str
    scoring_date: dt.date
    rank_at_decision: int
    #: None for a decision taken while the model was paused (the rank is the fallback's)
    probability_at_decision: float | None
    supersedes: str | None = None
    superseded_by: str | None = None
    run_id: str | None = None
    replayed: bool = False

    def reason_text(self, language: str = "en") -> str:
        """The reason in words, with the note (:func:`reason_words`)."""
        return reason_words(self.reason, self.note, language)

    @property
    def is_open(self) -> bool:
        """True while no later decision supersedes this one."""
        return self.superseded_by is None

    @classmethod
    def of(cls, row: DecisionRow, superseded_by: str | None = None) -> RecordedDecision:
        """From a stored row."""
        return cls(
            decision_id=row.decision_id,
            address_id=row.address_id,
            decision=row.decision,
            reason=row.reason,
            note=row.note,
            decided_at=row.decided_at,
            decided_by=row.decided_by,
            role=row.role,
            key_name=row.key_name,
            model_version=row.model_version,
            scoring_date=row.scoring_date,
            rank_at_decision=row.rank_at_decision,
            probability_at_decision=row.probability_at_decision,
            supersedes=row.supersedes,
            superseded_by=superseded_by,
            run_id=row.run_id,
        )


def _timestamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _chain(session: Session, address_id: str) -> tuple[list[DecisionRow], dict[str, str]]:
    """The address's decisions, oldest first, and which decision superseded which."""
    rows = list(
        session.scalars(
            select(DecisionRow)
            .where(DecisionRow.address_id == address_id)
            .order_by(DecisionRow.seq)
        )
    )
    return rows, {r.supersedes: r.decision_id for r in rows if r.supersedes is not None}


def _check_chain(session: Session, address_id: str, supersedes: str | None) -> None:
    """Refuse a decision that does not continue the address's chain."""
    rows, superseded_by = _chain(session, address_id)
    current = next((r for r in reversed(rows) if r.decision_id not in superseded_by), None)
    if supersedes is None:
        if current is not None:
            raise DecisionConflict(
                f"address {address_id} already has an open decision {current.decision_id} "
                f"({current.decision}, {_timestamp(current.decided_at)}); to replace it, send "
                f'"supersedes": "{current.decision_id}" with the new decision. Nothing was stored.'
            )
        return
    if not any(r.decision_id == supersedes for r in rows):
        raise DecisionError(
            f"supersedes: there is no decision {supersedes} on address {address_id}; "
            "nothing was stored"
        )
    if supersedes in superseded_by:
        still = f"; the open decision is {current.decision_id}" if current is not None else ""
        raise DecisionConflict(
            f"decision {supersedes} on address {address_id} was already superseded by "
            f"{superseded_by[supersedes]}{still}. Nothing was stored."
        )


class DecisionStore:
    """Append-only store of analysts' decisions, in the operational store.

    Parameters
    ----------
    store
        The opened operational store (:func:`stratum_ml.store.open_store`).
    audit
        The audit log that gets an intent record of every new row before it is
        committed; None for none (the command line, tests).
    """

    def __init__(self, store: Store, audit: AuditLog | None = None) -> None:
        self.store = store
        self.audit = audit

    def record(
        self,
        *,
        address_id: str,
        decision: str,
        reason: str,
        decided_by: str,
        note: str | None = None,
        model_version: str,
        scoring_date: dt.date,
        rank: int,
        probability: float | None,
        role: str | None = None,
        key_name: str | None = None,
        supersedes: str | None = None,
        idempotency_key: str | None = None,
        run_id: str | None = None,
    ) -> RecordedDecision:
        """Check one decision and add it to the store, in one transaction.

        Parameters
        ----------
        address_id
            The address decided about (a scored dwelling; the caller checks).
        decision
            One of :data:`DECISIONS`.
        reason
            Why: a code of :data:`DECISION_REASONS`.
        note
            The analyst's own words, if any (1 to :data:`MAX_REASON_LENGTH`
            characters, no person data); required with ``other``.
        decided_by, role, key_name
            Key id, role and key name of the caller (never the key).
        model_version, scoring_date, rank, probability
            What the service showed when the decision was taken; while the model is
            paused the rank in the fallback ranking and no probability (None).
        supersedes
            The address's open decision that this one replaces; required when the
            address has one.
        idempotency_key
            The client's key for this request: sent again, nothing is stored and the
            first decision is returned (with ``replayed`` True).
        run_id
            The scoring run the service answered from when the decision was taken.

        Returns
        -------
        RecordedDecision
            The row as stored, with its new ``decision_id``.

        Raises
        ------
        DecisionConflict
            When the address has an open decision that ``supersedes`` does not name,
            or ``supersedes`` names a decision that is no longer open.
        DecisionError
            When another rule is broken (``supersedes`` names no decision on this address).
        IdempotencyKeyReused
            When the key came before with a different request.
        """
        problems = []
        if decision not in DECISIONS:
            problems.append(f"decision: must be one of {', '.join(DECISIONS)}")
        problems.extend(note_problems(reason, note))
        if idempotency_key is not None:
            try:
                check_idempotency_key(idempotency_key)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise DecisionError("the decision was not stored: " + "; ".join(problems))
        new = DecisionRow(
            decision_id=f"{ID_PREFIX}{uuid.uuid4().hex}",
            address_id=address_id,
            decision=decision,
            reason=reason,
            note=note,
            decided_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
            decided_by=decided_by,
            role=role,
            key_name=key_name,
            model_version=model_version,
            scoring_date=scoring_date,
            rank_at_decision=int(rank),
            probability_at_decision=None if probability is None else float(probability),
            supersedes=supersedes,
            idempotency_key=idempotency_key,
            run_id=run_id,
        )
        try:
            return self._write(new)
        except DecisionConflict:
            # a racing retry of the same request may have stored it since our checks ran
            if idempotency_key is not None:
                with self.store.transaction() as session:
                    first = _by_key(session, idempotency_key)
                    if first is not None:
                        return self._replay(first, new)
            raise

    def _write(self, new: DecisionRow) -> RecordedDecision:
        """Check and add ``new`` in one transaction; once more if a racing writer won."""
        for attempt in range(2):
            try:
                with self.store.transaction() as session:
                    if new.idempotency_key is not None:
                        first = _by_key(session, new.idempotency_key)
                        if first is not None:
                            return self._replay(first, new)
                    _check_chain(session, new.address_id, new.supersedes)
                    session.add(new)
                    session.flush()  # the database accepts the row before it is announced
                    if self.audit is not None:
                        self.audit.append_intent(
                            key_id=new.decided_by,
                            role=new.role,
                            endpoint="decision",
                            address_ids=[new.address_id],
                            model_version=new.model_version,
                            row_id=new.decision_id,
                        )
                return RecordedDecision.of(new)
            except IntegrityError:
                # another writer stored a competing row first; the checks now see it
                if attempt:
                    raise
                new = _copy(new)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _replay(first: DecisionRow, again: DecisionRow) -> RecordedDecision:
        same = ("address_id", "decision", "reason", "note", "decided_by", "supersedes")
        if any(getattr(first, name) != getattr(again, name) for name in same):
            raise reused("decision")
        return replace(RecordedDecision.of(first), replayed=True)

    def history(
        self,
        address_id: str | None = None,
        *,
        limit: int | None = None,
        run_id: str | None = None,
    ) -> list[RecordedDecision]:
        """Stored decisions, oldest first: of one address, or the latest ``limit`` of all.

        Parameters
        ----------
        address_id
            Only this address's decisions (its whole chain); None for every address.
        limit
            At most this many, the most recent ones; None for all.
        run_id
            Only the decisions taken on this scoring run.

        Returns
        -------
        list of RecordedDecision
            With ``superseded_by`` filled in: the open decision of an address is the
            one whose ``superseded_by`` is None.
        """
        query = select(DecisionRow).order_by(DecisionRow.seq.desc())
        if address_id is not None:
            query = query.where(DecisionRow.address_id == address_id)
        if run_id is not None:
            query = query.where(DecisionRow.run_id == run_id)
        if limit is not None:
            query = query.limit(limit)
        with self.store.transaction() as session:
            rows = list(session.scalars(query))[::-1]
            successors = _successors(session, [r.decision_id for r in rows])
        return [RecordedDecision.of(r, successors.get(r.decision_id)) for r in rows]


def _by_key(session: Session, key: str) -> DecisionRow | None:
    """The decision stored with an idempotency key, if any."""
    return session.scalar(select(DecisionRow).where(DecisionRow.idempotency_key == key))


def _copy(row: DecisionRow) -> DecisionRow:
    """A fresh, unsaved copy of a row (a failed flush leaves the original unusable)."""
    columns = [c.key for c in DecisionRow.__table__.columns if c.key != "seq"]
    return DecisionRow(**{name: getattr(row, name) for name in columns})


def _successors(session: Session, decision_ids: Sequence[str]) -> dict[str, str]:
    """Which decision superseded each of ``decision_ids`` (absent while open)."""
    found: dict[str, str] = {}
    for start in range(0, len(decision_ids), 500):
        chunk = decision_ids[start : start + 500]
        pairs = session.execute(
            select(DecisionRow.supersedes, DecisionRow.decision_id).where(
                DecisionRow.supersedes.in_(chunk)
            )
        )
        found.update({str(old): str(new) for old, new in pairs})
    return found


def read_decisions(store: Store) -> pd.DataFrame:
    """Every stored decision, typed: one row per decision, oldest first.

    Parameters
    ----------
    store
        The operational store.

    Returns
    -------
    pandas.DataFrame
        The :data:`STORE_COLUMNS`: ids, decision, reason (a code), note, role, key
        name and ``supersedes`` as strings (the last four may be missing), ``decided_at``
        as a UTC timestamp, ``scoring_date`` as a date (datetime64),
        ``rank_at_decision`` as int64 and ``probability_at_decision`` as float64 (NaN for
        a decision taken while the model was paused).
    """
    with store.transaction() as session:
        rows = list(session.scalars(select(DecisionRow).order_by(DecisionRow.seq)))
    frame = pd.DataFrame(
        [{c: getattr(r, c) for c in STORE_COLUMNS} for r in rows], columns=list(STORE_COLUMNS)
    )
    out = frame.astype("string")
    out["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
    out["scoring_date"] = pd.to_datetime(frame["scoring_date"])
    out["rank_at_decision"] = frame["rank_at_decision"].astype("int64")
    out["probability_at_decision"] = frame["probability_at_decision"].astype("float64")
    return out.reset_index(drop=True)
