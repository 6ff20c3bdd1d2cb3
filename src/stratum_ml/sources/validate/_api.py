"""Validate tables or a source folder, and load validated tables."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from stratum_ml.io import release_free_memory
from stratum_ml.sources.contract import CONTRACT, MODEL_TABLES, TABLES
from stratum_ml.sources.extract import (
    ExtractDate,
    latest_date,
    read_declaration,
    resolve_extract_date,
)
from stratum_ml.sources.tables import (
    AuditTables,
    SourceTables,
    normalise_column,
    normalise_table,
)
from stratum_ml.sources.validate._files import _read_dated_columns, _validate_dir
from stratum_ml.sources.validate._findings import (
    SourceValidationError,
    ValidationReport,
    _finding_order,
    _table_finding,
)
from stratum_ml.sources.validate._rules import _check_table, _presence_findings, _reference_findings


def validate_tables(
    frames: Mapping[str, pd.DataFrame], *, files: Mapping[str, str] | None = None
) -> ValidationReport:
    """Validate in-memory tables against the data contract.

    Parameters
    ----------
    frames : mapping of str to pandas.DataFrame
        Table name to frame, as read (text columns) or already typed. Rows are
        numbered by position, whatever the index.
    files : mapping of str to str, optional
        Table name to the file name that messages should name.

    Returns
    -------
    ValidationReport
        Every finding; ``report.ok`` says whether the tables may be used.

    Examples
    --------
    >>> report = validate_tables({})
    >>> report.ok, [f.table for f in report.errors]
    (False, ['addresses', 'registrations', 'inspections'])
    """
    files = files or {}
    report = ValidationReport()
    year = dt.date.today().year
    typed: dict[str, pd.DataFrame] = {}
    for name, raw in frames.items():
        if name not in TABLES:
            report.findings.append(
                _table_finding("note", None, files.get(name), f"unknown table {name!r}", "ignored")
            )
            continue
        if name in files:
            report.files[name] = files[name]
        report.tables[name] = len(raw)
        findings, typed[name] = _check_table(raw, TABLES[name], files.get(name), year)
        report.findings.extend(findings)
    report.findings.extend(_presence_findings(CONTRACT, typed, report.files, in_memory=True))
    report.findings.extend(_reference_findings(CONTRACT, typed, report.files, {}))
    report.findings.sort(key=_finding_order)
    return report


def validate_source_dir(path: str | os.PathLike[str]) -> ValidationReport:
    """Validate every contract table in a source folder.

    Each table is ``<table>.csv`` or ``<table>.parquet``; both for one table is an
    error, other files are noted and ignored. CSV columns are read as text and
    converted per row, so a bad value is reported with its row instead of failing
    the read; an empty CSV field is missing.

    Parameters
    ----------
    path : str or os.PathLike
        The source folder.

    Returns
    -------
    ValidationReport
        Every finding, the row counts and the sha256 of every file read.
    """
    report, _ = _validate_dir(Path(path), CONTRACT)
    return report


def load_sources(path: str | os.PathLike[str]) -> SourceTables:
    """Validate the model-input tables of a source folder and load them.

    ``audit_attributes`` is neither read nor returned (see :func:`load_audit_tables`).
    Each file is read once; warnings and notes do not stop loading.

    Parameters
    ----------
    path : str or os.PathLike
        The source folder.

    Returns
    -------
    SourceTables
        Normalised tables (see :mod:`stratum_ml.sources.tables`), with the
        fingerprints of the files read (``extract.json`` included) and the
        declared extract date.

    Raises
    ------
    SourceValidationError
        When any rule is broken, the extract declaration included; its text lists
        every finding.
    """
    folder = Path(path)
    specs = [TABLES[name] for name in MODEL_TABLES]
    report, typed = _validate_dir(folder, specs)
    if not report.ok:
        raise SourceValidationError(report)
    tables = {name: _normalise_parsed(typed, name) for name in list(typed)}
    release_free_memory()
    extract = report.extract
    return SourceTables(
        **tables,
        fingerprints=dict(report.fingerprints),
        source_dir=folder,
        declared_extract_date=extract.date if extract is not None and extract.declared else None,
    )


def _normalise_parsed(typed: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """:func:`normalise_table` of ``typed[name]``, taken out of ``typed`` column by column.

    Each parsed column is let go once normalised, so a table is not held twice.
    """
    parsed = typed.pop(name)
    n = len(parsed)
    columns = {
        c.name: normalise_column(parsed.pop(c.name), c)
        for c in TABLES[name].columns
        if c.name in parsed.columns
    }
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)


def read_extract_date(path: str | os.PathLike[str]) -> ExtractDate:
    """The extract date of a source folder, reading only its dated columns.

    The same date as ``extract_date(load_sources(path))`` for a folder that loads,
    at a fraction of the cost: ``stratum serve`` checks its scoring date with it
    before starting a server. It does not validate the folder.

    Parameters
    ----------
    path : str or os.PathLike
        The source folder.

    Returns
    -------
    ExtractDate

    Raises
    ------
    NotADirectoryError
        When ``path`` is not a folder.
    ExtractDateError
        When the declaration is unreadable or lies on or before a date the folder
        holds, or the date cannot be known (see
        :func:`~stratum_ml.sources.extract.resolve_extract_date`).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise NotADirectoryError(f"source folder {folder} is not a folder")
    declared = read_declaration(folder)
    return resolve_extract_date(latest_date(_read_dated_columns(folder)), declared)


def load_audit_tables(path: str | os.PathLike[str]) -> AuditTables | None:
    """Validate and load the protected attributes, for the fairness audit only.

    Checks ``audit_attributes`` against the contract, including that every
    ``person_id`` exists in ``registrations`` (of which only ``person_id`` is read).

    Parameters
    ----------
    path : str or os.PathLike
        The source folder.

    Returns
    -------
    AuditTables or None
        The normalised table with the fingerprints of the files read, or ``None``
        when the folder has no ``audit_attributes`` file.

    Raises
    ------
    SourceValidationError
        When any rule is broken.
    """
    folder = Path(path)
    spec = TABLES["audit_attributes"]
    report, typed = _validate_dir(folder, [spec], reference_only=True)
    if not report.ok:
        raise SourceValidationError(report)
    if spec.name not in typed:
        return None
    return AuditTables(
        audit_attributes=normalise_table(typed[spec.name], spec),
        fingerprints=dict(report.fingerprints),
    )
