"""Read a source folder: find each table's file, read it, and validate what was read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow.parquet as pq

from stratum_ml.io import sha256_file
from stratum_ml.sources.contract import EXTRACT_COLUMNS, EXTRACT_DECLARATION, TABLES, TableSpec
from stratum_ml.sources.extract import (
    ExtractDateError,
    latest_date,
    read_declaration,
    resolve_extract_date,
)
from stratum_ml.sources.validate._findings import (
    Finding,
    ValidationReport,
    _finding_order,
    _table_finding,
)
from stratum_ml.sources.validate._parse import _parse_column
from stratum_ml.sources.validate._rules import (
    _check_table,
    _presence_findings,
    _reference_findings,
    _referenced,
)

FILE_SUFFIXES = (".csv", ".parquet")


def _validate_dir(
    folder: Path, specs: Sequence[TableSpec], *, reference_only: bool = False
) -> tuple[ValidationReport, dict[str, pd.DataFrame]]:
    """Read and validate ``specs`` from ``folder``; also the parsed frames.

    With ``reference_only``, the tables that ``specs`` refer to are read only for
    the referenced columns, which are not validated themselves. Otherwise the
    folder's extract date is checked too (``report.extract``): a declaration that
    cannot be read, or that lies on or before a date the tables hold, is an error.
    """
    report = ValidationReport(source_dir=folder)
    typed: dict[str, pd.DataFrame] = {}
    if not folder.is_dir():
        report.findings.append(
            _table_finding("error", None, None, "source folder", f"{folder} is not a folder")
        )
        return report, typed
    found, clashes = _scan(folder, report)
    year = dt.date.today().year
    unreadable: set[str] = set()
    hashes: dict[str, Future[str]] = {}
    parents: dict[tuple[str, str], pd.Series] = {}
    with ThreadPoolExecutor(max_workers=1) as hasher:
        declaration = folder / EXTRACT_DECLARATION.file
        if not reference_only and declaration.is_file():
            hashes[declaration.name] = hasher.submit(sha256_file, declaration)
        for spec in specs:
            path = found.get(spec.name)
            if path is None:
                continue
            hashes[path.name] = hasher.submit(sha256_file, path)
            report.files[spec.name] = path.name
            try:
                raw = _read_table_file(path)
            except (OSError, ValueError) as exc:
                unreadable.add(spec.name)
                report.findings.append(_unreadable(spec.name, path, exc))
                continue
            report.tables[spec.name] = len(raw)
            # the columns as read are let go as they are parsed: one table is held once
            findings, typed[spec.name] = _check_table(raw, spec, path.name, year, consume=True)
            report.findings.extend(findings)
            del raw
        if reference_only and typed:
            names = {s.name for s in specs}
            for table, column in sorted(r for r in _referenced(specs) if r[0] not in names):
                if table in clashes:
                    continue
                path = found.get(table)
                if path is None:
                    report.findings.extend(_presence_findings([TABLES[table]], {}, {}))
                    continue
                hashes[path.name] = hasher.submit(sha256_file, path)
                report.files[table] = path.name
                parent = _read_reference(path, table, column, report)
                if parent is not None:
                    parents[(table, column)] = parent
        report.findings.extend(
            _presence_findings(specs, typed, report.files, skip=unreadable | set(clashes))
        )
        report.findings.extend(_reference_findings(specs, typed, report.files, parents))
        if not reference_only:
            _check_extract(folder, typed, report)
        report.fingerprints = {
            name: future.result() for name, future in hashes.items() if future.exception() is None
        }
    report.findings.sort(key=_finding_order)
    return report, typed


def _check_extract(folder: Path, typed: dict[str, pd.DataFrame], report: ValidationReport) -> None:
    """Set ``report.extract``, or add the error that the declaration makes."""
    file = EXTRACT_DECLARATION.file
    try:
        declared = read_declaration(folder)
    except ExtractDateError as exc:
        report.findings.append(_table_finding("error", None, file, "extract declaration", str(exc)))
        return
    try:
        report.extract = resolve_extract_date(latest_date(typed), declared)
    except ExtractDateError as exc:
        if declared is not None:  # no dated row and no declaration is not a broken rule
            report.findings.append(_table_finding("error", None, file, "extract date", str(exc)))


def _read_dated_columns(folder: Path) -> dict[str, pd.DataFrame]:
    """Only the columns that date a folder (``EXTRACT_COLUMNS``), parsed, by table.

    A table given twice, a file that cannot be read and a missing column are
    skipped: loading the folder reports them.
    """
    found, _ = _scan(folder, ValidationReport(source_dir=folder))
    frames: dict[str, pd.DataFrame] = {}
    for table in dict.fromkeys(c.table for c in EXTRACT_COLUMNS):
        path = found.get(table)
        if path is None:
            continue
        try:
            header = _header(path)
            columns = [c.column for c in EXTRACT_COLUMNS if c.table == table and c.column in header]
            raw = _read_table_file(path, columns)
        except (OSError, ValueError):
            continue
        spec = TABLES[table]
        frames[table] = pd.DataFrame(
            {c: _parse_column(raw[c], spec.column(c).kind).values for c in columns}
        )
    return frames


def _scan(folder: Path, report: ValidationReport) -> tuple[dict[str, Path], list[str]]:
    """The file of each table, and the tables given twice (an error, added to ``report``).

    Entries that are neither table files nor the extract declaration are noted and ignored.
    """
    candidates: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.name == EXTRACT_DECLARATION.file:
            continue
        if entry.is_file() and entry.suffix in FILE_SUFFIXES and entry.stem in TABLES:
            candidates.setdefault(entry.stem, []).append(entry)
        else:
            report.findings.append(
                _table_finding(
                    "note",
                    None,
                    entry.name,
                    "unknown file",
                    f"{entry.name} is not a contract table file and is ignored "
                    "(expected <table>.csv or <table>.parquet)",
                )
            )
    found: dict[str, Path] = {}
    clashes: list[str] = []
    for table, paths in candidates.items():
        if len(paths) == 1:
            found[table] = paths[0]
            continue
        clashes.append(table)
        names = ", ".join(p.name for p in paths)
        report.findings.append(
            _table_finding(
                "error",
                table,
                names,
                "one file per table",
                f"{names}: table {table} is given twice; keep one of the files",
            )
        )
    return found, clashes


def _read_table_file(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A table file as read: CSV as text (empty field = missing), Parquet as stored."""
    if path.suffix == ".parquet":
        # one block per column, the Arrow buffers freed as converted: no second copy
        return pd.read_parquet(
            path,
            engine="pyarrow",
            columns=columns,
            to_pandas_kwargs={"date_as_object": False, "split_blocks": True, "self_destruct": True},
        )
    try:
        return _read_csv(path, "pyarrow", columns)
    except (OSError, ValueError):
        # pyarrow's errors quote the offending line, which may hold identifiers; the C
        # parser reads some files pyarrow cannot (line breaks inside quoted values) and
        # reports errors by line number only.
        return _read_csv(path, "c", columns)


def _read_csv(
    path: Path, engine: Literal["c", "pyarrow"], columns: list[str] | None
) -> pd.DataFrame:
    return pd.read_csv(
        path,
        engine=engine,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        encoding="utf-8",
        usecols=columns,
    )


def _header(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return list(pq.read_schema(path).names)
    return [str(c) for c in pd.read_csv(path, nrows=0, encoding="utf-8").columns]


def _read_reference(
    path: Path, table: str, column: str, report: ValidationReport
) -> pd.Series | None:
    """The values of a referenced column, read alone; ``None`` (with a finding) if unusable."""
    try:
        if column not in _header(path):
            report.findings.append(
                _table_finding(
                    "error",
                    table,
                    path.name,
                    "missing required column",
                    f"{path.name}: required column {column} is missing",
                    column=column,
                )
            )
            return None
        raw = _read_table_file(path, [column])
    except (OSError, ValueError) as exc:
        report.findings.append(_unreadable(table, path, exc))
        return None
    report.tables[table] = len(raw)
    return _parse_column(raw[column], TABLES[table].column(column).kind).values


def _unreadable(table: str, path: Path, exc: Exception) -> Finding:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return _table_finding(
        "error", table, path.name, "readable file", f"{path.name} cannot be read: {reason}"
    )
