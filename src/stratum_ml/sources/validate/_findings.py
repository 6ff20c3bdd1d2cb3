"""Findings and the validation report: what validation says, and how it says it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from stratum_ml.sources.contract import CONTRACT, TABLES, TableSpec
from stratum_ml.sources.extract import ExtractDate
from stratum_ml.sources.schemas import looks_like_bsn

Severity = Literal["error", "warning", "note"]

#: how many offending row numbers a finding lists
MAX_ROWS = 5
#: how many offending values a finding shows (never for identifier columns)
MAX_EXAMPLES = 3
ROWS_EXPLAINED = "1-based data rows; CSV line = row + 1"

_SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "note": 2}
_TABLE_ORDER = {spec.name: i for i, spec in enumerate(CONTRACT)}


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One broken rule (or a remark) about a table, a file or a column.

    Attributes
    ----------
    severity : {"error", "warning", "note"}
        Errors reject the sources; warnings and notes do not.
    table : str or None
        Contract table; ``None`` for remarks about the folder itself.
    file : str or None
        File name the table was read from; ``None`` for in-memory tables.
    column : str or None
        Column concerned, or ``None`` for table-level findings.
    rule : str
        Short rule name, e.g. ``"pattern ^[0-9]{16}$"``, ``"unique"``,
        ``"references addresses.address_id"``, ``"type int"``.
    rows : list of int
        The first few offending rows (1-based data rows, header excluded).
    n_failed : int
        Number of offending rows (0 for table-level findings).
    message : str
        Self-contained sentence naming the file, column, rows and rule.
    """

    severity: Severity
    table: str | None
    file: str | None
    column: str | None
    rule: str
    rows: list[int] = field(default_factory=list)
    n_failed: int = 0
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass
class ValidationReport:
    """Everything validation found, plus what was read.

    Attributes
    ----------
    findings : list of Finding
        In contract table order, then column order.
    tables : dict of str to int
        Row count of every table that was read.
    files : dict of str to str
        File name of every table that was read from a file.
    fingerprints : dict of str to str
        sha256 of every file read, by file name.
    source_dir : pathlib.Path or None
        The source folder, or ``None`` for in-memory tables.
    extract : ExtractDate or None
        The folder's extract date (``sources.extract``); ``None`` for in-memory
        tables, or when it cannot be known.
    """

    findings: list[Finding] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    source_dir: Path | None = None
    extract: ExtractDate | None = None

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings and notes allowed)."""
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        """Findings that reject the sources."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings worth fixing that do not reject the sources."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def notes(self) -> list[Finding]:
        """Remarks, such as an absent optional table."""
        return [f for f in self.findings if f.severity == "note"]

    @property
    def verdict(self) -> str:
        """One line: valid or not, with the counts of each severity."""
        counts = ", ".join(
            _plural(len(group), word)
            for group, word in (
                (self.errors, "error"),
                (self.warnings, "warning"),
                (self.notes, "note"),
            )
        )
        return f"{'valid' if self.ok else 'NOT valid'}: {counts}"

    def summary(self) -> str:
        """A readable multi-line text: the verdict, then every finding, errors first.

        Returns
        -------
        str
            Plain text, one finding per line.
        """
        source = str(self.source_dir) if self.source_dir is not None else "source tables"
        ordered = sorted(self.findings, key=lambda f: _SEVERITY_ORDER[f.severity])
        return "\n".join([f"{source}: {self.verdict}", *(f"  {f}" for f in ordered)])


class SourceValidationError(ValueError):
    """Raised by :func:`~stratum_ml.sources.load_sources` when the sources break the contract.

    ``str(exc)`` is the report's multi-line summary; ``exc.report`` holds it all.
    """

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report


def _where(table: str | None, file: str | None) -> str:
    return file or f"table {table}"


def _table_finding(
    severity: Severity,
    table: str | None,
    file: str | None,
    rule: str,
    message: str,
    *,
    column: str | None = None,
) -> Finding:
    return Finding(
        severity=severity, table=table, file=file, column=column, rule=rule, message=message
    )


def _mask_finding(
    spec: TableSpec, file: str | None, column: str, rule: str, broken: np.ndarray, what: str
) -> list[Finding]:
    if not broken.any():
        return []
    return [_row_finding(spec, file, column, rule, np.flatnonzero(broken), what)]


def _row_finding(
    spec: TableSpec,
    file: str | None,
    column: str,
    rule: str,
    positions: np.ndarray,
    what: str,
    values: pd.Series | None = None,
) -> Finding:
    """An error about rows (0-based ``positions``, sorted) of one column.

    ``values`` are offending values, shown only for non-identifier columns.
    """
    rows = [int(p) + 1 for p in positions[:MAX_ROWS]]
    n = len(positions)
    shown = ", ".join(map(str, rows)) + (", ..." if n > MAX_ROWS else "")
    message = (
        f"{_where(spec.name, file)}, column {column}: {_plural(n, 'row')} "
        f"{'breaks' if n == 1 else 'break'} rule '{rule}' ({what}); rows {shown} ({ROWS_EXPLAINED})"
    )
    if spec.column(column).identifier:
        message += "; identifier values are never shown"
    elif values is not None:
        message += "; e.g. " + ", ".join(_show(v) for v in _first_distinct(values))
    return Finding(
        severity="error",
        table=spec.name,
        file=file,
        column=column,
        rule=rule,
        rows=rows,
        n_failed=n,
        message=message,
    )


def _first_distinct(values: pd.Series) -> list[Any]:
    distinct: list[Any] = []
    for value in values.iloc[: 20 * MAX_EXAMPLES]:
        if value not in distinct:
            distinct.append(value)
        if len(distinct) == MAX_EXAMPLES:
            break
    return distinct


def _show(value: Any) -> str:
    if isinstance(value, str | int) and looks_like_bsn(pd.Series([str(value).strip()])).iloc[0]:
        return "(a BSN, not shown)"
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "(empty)"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _finding_order(finding: Finding) -> tuple[int, int]:
    if finding.table is None:
        return (-1, 0)
    spec = TABLES[finding.table]
    columns = spec.column_names
    column = columns.index(finding.column) if finding.column in columns else len(columns)
    return (_TABLE_ORDER[finding.table], -1 if finding.column is None else column)
