"""The one-off import of the CSV stores that earlier versions wrote under ``STRATUM_HOME``.

Earlier versions kept analysts' decisions in ``<home>/decisions/decisions.csv``
and visit outcomes in ``<home>/outcomes/inspections.csv``. When the store is
opened with a home folder (:func:`~stratum_ml.store.open_store`), each file
found there is checked as that version checked it, its rows are added in ONE
transaction (both files together), and only after the commit is each file
renamed to ``<name>.migrated`` (its ``.lock`` file removed). A damaged file
stops the import with a message naming the file, column and lines; nothing is
added and the file stays where it is.

The old decisions store kept every decision on an address without linking
them; imported, the decisions on one address are chained in file order (each
supersedes the one before), so that the latest is the open one. The old files
recorded only the caller's key id, so imported decisions have no role or key
name. Rows already in the database (an import interrupted after its commit)
are not added again.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from stratum_ml.sources.contract import TABLES
from stratum_ml.sources.validate import validate_tables
from stratum_ml.store.engine import StoreError
from stratum_ml.store.store import Store
from stratum_ml.store.tables import DECISIONS, DecisionRow, VisitOutcomeRow

#: where earlier versions kept their CSV stores, under the home folder
LEGACY_DECISIONS = Path("decisions") / "decisions.csv"
LEGACY_OUTCOMES = Path("outcomes") / "inspections.csv"
#: the suffix an imported file is renamed with
MIGRATED_SUFFIX = ".migrated"

DECISION_COLUMNS = (
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
_INSPECTIONS = TABLES["inspections"]
OUTCOME_COLUMNS = (*_INSPECTIONS.column_names, "recorded_at", "recorded_by")


class LegacyStoreError(StoreError):
    """A CSV store of an earlier version that cannot be imported; nothing was imported."""


@dataclass(frozen=True)
class LegacyImport:
    """What one import did: rows added per table and the files renamed."""

    decisions: int = 0
    outcomes: int = 0
    renamed: list[Path] = field(default_factory=list)


def read_text_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """A CSV store as text columns; empty (with ``columns``) when the file does not exist."""
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
    return pd.read_csv(path, dtype="str", keep_default_na=False, na_values=[""])


def _lines(mask: pd.Series) -> str:
    return ", ".join(str(i + 2) for i in mask[mask].index[:5])  # file lines, after the header


def read_legacy_decisions(path: Path) -> pd.DataFrame:
    """An old decisions CSV, checked and typed as the version that wrote it read it.

    Raises
    ------
    LegacyStoreError
        When the file is not a decisions store or a row breaks a rule; the message
        names the file, column and lines.
    """
    text = read_text_table(path, DECISION_COLUMNS)
    missing = [c for c in DECISION_COLUMNS if c not in text.columns]
    if missing:
        raise LegacyStoreError(f"{path}: not a decisions store (no column {', '.join(missing)})")
    text = text[list(DECISION_COLUMNS)]
    problems: list[str] = []
    empty = text.isna().any(axis=1)
    if empty.any():
        problems.append(f"empty fields on lines {_lines(empty)}")
    bad = ~text["decision"].isin(DECISIONS)
    if bad.any():
        problems.append(f"decision: not one of {', '.join(DECISIONS)} on lines {_lines(bad)}")
    out = text.astype("object")
    converted: dict[str, pd.Series] = {
        "decided_at": pd.to_datetime(text["decided_at"], utc=True, errors="coerce"),
        "scoring_date": pd.to_datetime(text["scoring_date"], format="%Y-%m-%d", errors="coerce"),
        "rank_at_decision": pd.to_numeric(text["rank_at_decision"], errors="coerce"),
        "probability_at_decision": pd.to_numeric(text["probability_at_decision"], errors="coerce"),
    }
    for column, values in converted.items():
        unreadable = values.isna() & text[column].notna()
        if unreadable.any():
            problems.append(f"{column}: unreadable on lines {_lines(unreadable)}")
        out[column] = values
    if problems:
        raise LegacyStoreError(f"{path}: " + "; ".join(problems))
    return out.reset_index(drop=True)


def read_legacy_outcomes(path: Path) -> pd.DataFrame:
    """An old outcomes CSV (text columns), checked against the data contract.

    Raises
    ------
    LegacyStoreError
        When the file is not an outcomes store or breaks the contract; the message
        names the file, column, rows and rule.
    """
    text = read_text_table(path, OUTCOME_COLUMNS)
    missing = [c for c in OUTCOME_COLUMNS if c not in text.columns]
    if missing:
        raise LegacyStoreError(f"{path}: not an outcomes store (no column {', '.join(missing)})")
    if len(text):
        report = validate_tables(
            {"inspections": text[list(_INSPECTIONS.column_names)]},
            files={"inspections": path.name},
        )
        errors = [f.message for f in report.errors if f.table == "inspections"]
        recorded = pd.to_datetime(text["recorded_at"], utc=True, errors="coerce")
        if recorded.isna().any():
            errors.append(f"recorded_at: unreadable on lines {_lines(recorded.isna())}")
        if text["recorded_by"].isna().any():
            errors.append(f"recorded_by: empty on lines {_lines(text['recorded_by'].isna())}")
        if errors:
            raise LegacyStoreError(f"{path}: " + "; ".join(errors))
    return text[list(OUTCOME_COLUMNS)].reset_index(drop=True)


def _decision_rows(frame: pd.DataFrame, stored: set[str]) -> list[DecisionRow]:
    rows: list[DecisionRow] = []
    previous: dict[str, str] = {}
    for record in frame.to_dict("records"):
        decision_id, address = str(record["decision_id"]), str(record["address_id"])
        if decision_id not in stored:
            rows.append(
                DecisionRow(
                    decision_id=decision_id,
                    address_id=address,
                    decision=str(record["decision"]),
                    # the old store's reasons were free text: kept as the note of 'other'
                    reason="other",
                    note=str(record["reason"]),
                    decided_at=pd.Timestamp(record["decided_at"]).to_pydatetime(),
                    decided_by=str(record["decided_by"]),
                    role=None,
                    key_name=None,
                    model_version=str(record["model_version"]),
                    scoring_date=pd.Timestamp(record["scoring_date"]).date(),
                    rank_at_decision=int(record["rank_at_decision"]),
                    probability_at_decision=float(record["probability_at_decision"]),
                    supersedes=previous.get(address),
                )
            )
        previous[address] = decision_id
    return rows


def _outcome_rows(frame: pd.DataFrame, stored: set[str]) -> list[VisitOutcomeRow]:
    return [
        VisitOutcomeRow(
            inspection_id=str(record["inspection_id"]),
            address_id=str(record["address_id"]),
            inspected_at=dt.date.fromisoformat(str(record["inspected_at"])),
            reason=str(record["reason"]),
            outcome=str(record["outcome"]),
            violation_type=None if pd.isna(record["violation_type"]) else record["violation_type"],
            recorded_at=pd.Timestamp(record["recorded_at"]).tz_convert("UTC").to_pydatetime(),
            recorded_by=str(record["recorded_by"]),
        )
        for record in frame.to_dict("records")
        if str(record["inspection_id"]) not in stored
    ]


def _retire(path: Path) -> Path | None:
    """Rename an imported file to ``<name>.migrated`` and drop its lock file."""
    target = path.with_name(path.name + MIGRATED_SUFFIX)
    if target.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}{MIGRATED_SUFFIX}-{stamp}")
    try:
        os.replace(path, target)
    except FileNotFoundError:  # another process imported and renamed it first
        return None
    path.with_name(path.name + ".lock").unlink(missing_ok=True)
    return target


def import_legacy_csv(store: Store, home: Path) -> LegacyImport:
    """Import the CSV stores an earlier version left in ``home`` (see the module docstring).

    Parameters
    ----------
    store
        The opened, migrated store.
    home
        The stratum home folder (``STRATUM_HOME``).

    Returns
    -------
    LegacyImport
        Rows added and files renamed; all zero and empty when there was nothing to import.

    Raises
    ------
    LegacyStoreError
        When a file is damaged or its rows clash with the database's; nothing was
        imported and the files stay.
    """
    decisions_file, outcomes_file = home / LEGACY_DECISIONS, home / LEGACY_OUTCOMES
    found = [p for p in (decisions_file, outcomes_file) if p.exists()]
    if not found:
        return LegacyImport()
    decisions = read_legacy_decisions(decisions_file)
    outcomes = read_legacy_outcomes(outcomes_file)
    try:
        with store.transaction() as session:
            known_decisions = set(session.scalars(select(DecisionRow.decision_id)))
            known_outcomes = set(session.scalars(select(VisitOutcomeRow.inspection_id)))
            new_decisions = _decision_rows(decisions, known_decisions)
            new_outcomes = _outcome_rows(outcomes, known_outcomes)
            for decision in new_decisions:  # one by one: a chain refers to earlier rows
                session.add(decision)
                session.flush()
            session.add_all(new_outcomes)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the files in place
        raise LegacyStoreError(
            f"cannot import {' and '.join(str(p) for p in found)} into the operational store "
            f"{store.url}: {type(exc).__name__}: {str(exc).splitlines()[0]}; nothing was "
            "imported and the files were left in place"
        ) from None
    renamed = [target for path in found if (target := _retire(path)) is not None]
    return LegacyImport(decisions=len(new_decisions), outcomes=len(new_outcomes), renamed=renamed)
