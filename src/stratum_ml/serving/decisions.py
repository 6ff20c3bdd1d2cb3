"""The decisions store: what an analyst decided about an address on the priority list.

The model proposes; a person decides. An analyst records, per address, whether
it is passed on for a visit, declined, or needs more information, and why
(``decision`` endpoint). Each decision is one row of
``<STRATUM_HOME>/decisions/decisions.csv`` (:func:`decisions_path`) with what
the analyst saw when deciding: the model version, the scoring date, the
address's rank and probability. Who decided is the API key id, never the key.

Rows are only ever added, like the outcomes store
(:mod:`stratum_ml.serving.outcomes`): each write reads the file, appends one
row and replaces the file atomically (:func:`stratum_ml.io.atomic_path`) under
an exclusive lock. A later decision about the same address does not replace an
earlier one; both are kept, oldest first.

The store holds address-level facts only. The free-text reason is the one
field a person could write person data into, so a reason that looks like it
holds some (a 9-digit number such as a BSN, an e-mail address, a phone
number) is refused, as is text a spreadsheet would run as a formula.

:func:`read_decisions` reads the store back, typed and checked.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stratum_ml.serving.csv_store import CsvAppendStore, read_text_table

#: what an analyst may decide about an address
DECISIONS = ("pass_on_for_visit", "decline", "needs_more_information")
STORE_COLUMNS = (
    "decision_id",
    "address_id",
    "decision",
    "reason",
    "decided_at",
    "decided_by",
    "model_version",
    "scoring_date",
    "rank_at_decision",
    "probability_at_decision",
)
#: prefix of the decision ids the service hands out
ID_PREFIX = "dec-"
#: longest reason accepted
MAX_REASON_LENGTH = 500

_PERSON_DATA = (
    (re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])"), "a 9-digit number (a BSN?)"),
    (re.compile(r"[^\s@]+@[^\s@]+\.[A-Za-z]{2,}"), "an e-mail address"),
    (re.compile(r"(?<![0-9])(\+31|0031|0)[ -]?[1-9]([ -]?[0-9]){8}(?![0-9])"), "a phone number"),
)
_FORMULA_START = ("=", "+", "-", "@")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class DecisionError(ValueError):
    """A decision that breaks a rule, or a store that is not a decisions store."""


def decisions_path(home: str | os.PathLike[str]) -> Path:
    """The store under a stratum home folder: ``<home>/decisions/decisions.csv``."""
    return Path(home) / "decisions" / "decisions.csv"


def reason_problems(reason: str) -> list[str]:
    """Why a free-text reason may not be stored (empty when it may).

    Examples
    --------
    >>> reason_problems("water use far above the household's size")
    []
    >>> reason_problems("call 0612345678 first")
    ['it seems to hold a phone number; record no person data']
    """
    problems = [
        f"it seems to hold {what}; record no person data"
        for pattern, what in _PERSON_DATA
        if pattern.search(reason)
    ]
    if reason.startswith(_FORMULA_START):
        problems.append(f"it may not start with {', '.join(_FORMULA_START)} (spreadsheet formulas)")
    if _CONTROL.search(reason):
        problems.append("it holds control characters")
    return problems


@dataclass(frozen=True)
class RecordedDecision:
    """One stored decision (a row of the store)."""

    decision_id: str
    address_id: str
    decision: str
    reason: str
    decided_at: dt.datetime
    decided_by: str
    model_version: str
    scoring_date: dt.date
    rank_at_decision: int
    probability_at_decision: float


class DecisionStore(CsvAppendStore):
    """Append-only store of analysts' decisions.

    Parameters
    ----------
    path
        The CSV file (see :func:`decisions_path`); created with its folder on the first write.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, STORE_COLUMNS)

    def record(
        self,
        *,
        address_id: str,
        decision: str,
        reason: str,
        decided_by: str,
        model_version: str,
        scoring_date: dt.date,
        rank: int,
        probability: float,
    ) -> RecordedDecision:
        """Check one decision and append it to the store.

        Parameters
        ----------
        address_id
            The address decided about (a scored dwelling; the caller checks).
        decision
            One of :data:`DECISIONS`.
        reason
            Why, in the analyst's words (1 to :data:`MAX_REASON_LENGTH` characters,
            no person data).
        decided_by
            Key id of the caller (never the key).
        model_version, scoring_date, rank, probability
            What the service showed when the decision was taken.

        Returns
        -------
        RecordedDecision
            The row as stored, with its new ``decision_id``.

        Raises
        ------
        DecisionError
            When a rule is broken; nothing was stored.
        """
        problems = []
        if decision not in DECISIONS:
            problems.append(f"decision: must be one of {', '.join(DECISIONS)}")
        if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
            problems.append(f"reason: must hold 1 to {MAX_REASON_LENGTH} characters")
        problems.extend(f"reason: {p}" for p in reason_problems(reason))
        if problems:
            raise DecisionError("the decision was not stored: " + "; ".join(problems))
        stored = RecordedDecision(
            decision_id=f"{ID_PREFIX}{uuid.uuid4().hex}",
            address_id=address_id,
            decision=decision,
            reason=reason,
            decided_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
            decided_by=decided_by,
            model_version=model_version,
            scoring_date=scoring_date,
            rank_at_decision=int(rank),
            probability_at_decision=float(probability),
        )
        row = pd.DataFrame(
            [
                {
                    "decision_id": stored.decision_id,
                    "address_id": address_id,
                    "decision": decision,
                    "reason": reason,
                    "decided_at": stored.decided_at.isoformat(),
                    "decided_by": decided_by,
                    "model_version": model_version,
                    "scoring_date": scoring_date.isoformat(),
                    "rank_at_decision": str(stored.rank_at_decision),
                    "probability_at_decision": repr(stored.probability_at_decision),
                }
            ],
            columns=list(STORE_COLUMNS),
        )
        with self.locked() as existing:
            self.append_locked(existing, row)
        return stored


def read_decisions(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The stored decisions, typed: one row per decision, oldest first.

    Parameters
    ----------
    path
        The store (see :func:`decisions_path`); a missing file means no decisions.

    Returns
    -------
    pandas.DataFrame
        The :data:`STORE_COLUMNS`: ids, decision and reason as strings,
        ``decided_at`` as a UTC timestamp, ``scoring_date`` as a date (datetime64),
        ``rank_at_decision`` as int64 and ``probability_at_decision`` as float64.

    Raises
    ------
    DecisionError
        When the file is not a decisions store or a row breaks a rule (e.g. it was
        edited by hand); the message names the file, column and rows.

    Examples
    --------
    >>> read_decisions("/nonexistent/decisions.csv").columns.tolist()[:4]
    ['decision_id', 'address_id', 'decision', 'reason']
    """
    path = Path(path)
    text = read_text_table(path, STORE_COLUMNS)
    missing = [c for c in STORE_COLUMNS if c not in text.columns]
    if missing:
        raise DecisionError(f"{path}: not a decisions store (no column {', '.join(missing)})")
    text = text[list(STORE_COLUMNS)]
    problems: list[str] = []

    def rows(mask: pd.Series) -> str:
        return ", ".join(str(i + 2) for i in mask[mask].index[:5])  # file lines, after the header

    empty = text.isna().any(axis=1)
    if empty.any():
        problems.append(f"empty fields on lines {rows(empty)}")
    bad = ~text["decision"].isin(DECISIONS)
    if bad.any():
        problems.append(f"decision: not one of {', '.join(DECISIONS)} on lines {rows(bad)}")
    out = text.astype("string")
    converted: dict[str, pd.Series] = {
        "decided_at": pd.to_datetime(text["decided_at"], utc=True, errors="coerce"),
        "scoring_date": pd.to_datetime(text["scoring_date"], format="%Y-%m-%d", errors="coerce"),
        "rank_at_decision": pd.to_numeric(text["rank_at_decision"], errors="coerce"),
        "probability_at_decision": pd.to_numeric(text["probability_at_decision"], errors="coerce"),
    }
    for column, values in converted.items():
        unreadable = values.isna() & text[column].notna()
        if unreadable.any():
            problems.append(f"{column}: unreadable on lines {rows(unreadable)}")
        out[column] = values
    if problems:
        raise DecisionError(f"{path}: " + "; ".join(problems))
    out["rank_at_decision"] = out["rank_at_decision"].astype("int64")
    out["probability_at_decision"] = out["probability_at_decision"].astype("float64")
    return out.reset_index(drop=True)
