"""The outcomes store: visit outcomes recorded through the service, for the next training.

A case handler records what a home visit found (``feedback`` endpoint). Each
outcome becomes one row shaped like the contract's ``inspections`` table and is
checked by the same rules (:func:`stratum_ml.sources.validate_tables`: reason,
outcome and violation-type domains, violation type only with a violation), plus
two rules the contract cannot state for a whole export: the address must be in
the address register the service loaded, and the visit date may not lie in the
future.

The store is one CSV file, ``<STRATUM_HOME>/outcomes/inspections.csv``
(:func:`outcomes_path`). Rows are only ever added: each write reads the file,
appends one row and replaces the file atomically (:func:`stratum_ml.io.atomic_path`)
under an exclusive lock, so a reader never sees half a row and two writers
never lose each other's rows. Besides the contract columns every row records
when it was stored and by which API key id (``recorded_at``, ``recorded_by``),
so that a label can be traced to who entered it.

:func:`read_outcomes` gives the rows back as a normalised ``inspections`` table,
ready to be appended to the source folder's inspections.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stratum_ml.serving.csv_store import CsvAppendStore, read_text_table
from stratum_ml.sources.contract import TABLES
from stratum_ml.sources.tables import normalise_table
from stratum_ml.sources.validate import validate_tables

INSPECTIONS = TABLES["inspections"]
#: provenance columns stored after the contract columns
PROVENANCE_COLUMNS = ("recorded_at", "recorded_by")
STORE_COLUMNS = (*INSPECTIONS.column_names, *PROVENANCE_COLUMNS)
#: prefix of the inspection ids the service hands out (never a BSN: not 9 digits)
ID_PREFIX = "svc-"


class OutcomeError(ValueError):
    """A visit outcome that breaks a rule; nothing was stored."""


class DuplicateOutcome(OutcomeError):
    """The same visit (address, date, reason, outcome, violation type) is already stored."""

    def __init__(self, message: str, inspection_id: str) -> None:
        super().__init__(message)
        self.inspection_id = inspection_id


def outcomes_path(home: str | os.PathLike[str]) -> Path:
    """The store under a stratum home folder: ``<home>/outcomes/inspections.csv``."""
    return Path(home) / "outcomes" / "inspections.csv"


@dataclass(frozen=True)
class RecordedOutcome:
    """One stored visit outcome (a row of the store)."""

    inspection_id: str
    address_id: str
    inspected_at: dt.date
    reason: str
    outcome: str
    violation_type: str | None
    recorded_at: dt.datetime
    recorded_by: str


def _contract_errors(rows: pd.DataFrame, file: str | None) -> list[str]:
    """The contract's ``inspections`` rules broken by ``rows`` (text columns)."""
    report = validate_tables(
        {"inspections": rows[list(INSPECTIONS.column_names)]},
        files={"inspections": file} if file else None,
    )
    return [
        f.message if file else f"{f.column}: breaks the rule '{f.rule}'"
        for f in report.errors
        if f.table == "inspections"
    ]


class OutcomeStore(CsvAppendStore):
    """Append-only store of visit outcomes, checked against the contract.

    Parameters
    ----------
    path
        The CSV file (see :func:`outcomes_path`); created with its folder on the first write.
    address_ids
        The address register (``addresses.address_id``) outcomes must refer to.
    """

    def __init__(self, path: str | os.PathLike[str], address_ids: Collection[str]) -> None:
        super().__init__(path, STORE_COLUMNS)
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
    ) -> RecordedOutcome:
        """Check one visit outcome and append it to the store.

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

        Returns
        -------
        RecordedOutcome
            The row as stored, with its new ``inspection_id``.

        Raises
        ------
        OutcomeError
            When a rule is broken; the message names every broken rule.
        DuplicateOutcome
            When the same visit is already stored (a retried request); nothing is added.
        """
        today = today or dt.date.today()
        problems = []
        if address_id not in self._addresses:
            problems.append(f"address_id: {address_id} is not in the address register")
        if inspected_at > today:
            problems.append(f"inspected_at: {inspected_at} is in the future (today is {today})")
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
        row = pd.DataFrame(
            [
                {
                    "inspection_id": stored.inspection_id,
                    "address_id": address_id,
                    "inspected_at": inspected_at.isoformat(),
                    "reason": reason,
                    "outcome": outcome,
                    "violation_type": violation_type,
                    "recorded_at": stored.recorded_at.isoformat(),
                    "recorded_by": recorded_by,
                }
            ],
            columns=list(STORE_COLUMNS),
        )
        problems.extend(_contract_errors(row, None))
        if problems:
            raise OutcomeError("the visit outcome was not stored: " + "; ".join(problems))
        with self.locked() as existing:
            same = existing.loc[
                (existing["address_id"] == address_id)
                & (existing["inspected_at"] == inspected_at.isoformat())
                & (existing["reason"] == reason)
                & (existing["outcome"] == outcome)
                & (existing["violation_type"].fillna("") == (violation_type or ""))
            ]
            if len(same):
                first = str(same["inspection_id"].iloc[0])
                raise DuplicateOutcome(
                    f"this visit outcome is already stored as {first}; nothing was added",
                    first,
                )
            self.append_locked(existing, row)
        return stored


def read_outcomes(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The stored visit outcomes as a normalised ``inspections`` table.

    Only the contract columns are returned (provenance stays in the file), with
    the dtypes of :mod:`stratum_ml.sources.tables`, so the frame can be
    concatenated with a loaded source folder's ``inspections``.

    Parameters
    ----------
    path
        The store (see :func:`outcomes_path`); a missing file means no outcomes.

    Returns
    -------
    pandas.DataFrame
        One row per stored outcome, oldest first; empty (with the columns) when none.

    Raises
    ------
    OutcomeError
        When the file breaks the contract (e.g. it was edited by hand); the message
        names the file, column, rows and rule.

    Examples
    --------
    >>> read_outcomes("/nonexistent/inspections.csv").columns.tolist()
    ['inspection_id', 'address_id', 'inspected_at', 'reason', 'outcome', 'violation_type']
    """
    path = Path(path)
    text = read_text_table(path, STORE_COLUMNS)
    missing = [c for c in INSPECTIONS.column_names if c not in text.columns]
    if missing:
        raise OutcomeError(f"{path}: not an outcomes store (no column {', '.join(missing)})")
    errors = _contract_errors(text, path.name) if len(text) else []
    if errors:
        raise OutcomeError(f"{path}: " + "; ".join(errors))
    return normalise_table(text[list(INSPECTIONS.column_names)], INSPECTIONS)
