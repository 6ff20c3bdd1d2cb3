"""Validate source tables against the data contract, and load them.

Every rule comes from the specs in :mod:`stratum_ml.sources.contract`. Validation
runs in three steps per table:

1. *parse*: each contract column is converted to its kind (text, ``Int64``,
   ``float64``, naive ``datetime64[ns]``); a present value that does not convert
   is a ``type`` error for its row and is missing from then on, so that later
   rules do not report it again;
2. *schema*: the single-column rules (not null, unique, pattern, domain,
   minimum, maximum, BSN elfproef) run as the pandera schema of
   :func:`stratum_ml.sources.schemas.table_schema`, lazily, and its failure cases
   become findings;
3. *cross-column and cross-table rules*, vectorised in pandas: date order,
   "set only when", and references (foreign keys).

Row numbers in findings are 1-based data rows: row 1 is the first row after the
header, so a CSV's line number is the row number plus one.

No finding ever shows a value of an identifier column (person, address,
business, owner, report and inspection ids); other columns show at most
:data:`MAX_EXAMPLES` offending values.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stratum_ml.io import sha256_file
from stratum_ml.sources.contract import CONTRACT, MODEL_TABLES, TABLES, Kind, TableSpec
from stratum_ml.sources.schemas import PANDERA_RULES, table_schema
from stratum_ml.sources.tables import AuditTables, SourceTables, normalise_table

Severity = Literal["error", "warning", "note"]

#: how many offending row numbers a finding lists
MAX_ROWS = 5
#: how many offending values a finding shows (never for identifier columns)
MAX_EXAMPLES = 3
ROWS_EXPLAINED = "1-based data rows; CSV line = row + 1"
FILE_SUFFIXES = (".csv", ".parquet")

_SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "note": 2}
_TABLE_ORDER = {spec.name: i for i, spec in enumerate(CONTRACT)}
_AMSTERDAM = "Europe/Amsterdam"
_INT_TEXT = r"-?[0-9]{1,18}"
_FLOAT_TEXT = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_DATE_TEXT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_ZONED_TEXT = r"[T ][0-9:.,]+(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$"
# the days that datetime64[ns] holds entirely
_FIRST_DAY, _LAST_DAY = np.datetime64("1677-09-22"), np.datetime64("2262-04-10")
_KIND_WORDS: dict[str, str] = {
    "string": "text",
    "category": "text",
    "int": "a whole number",
    "float": "a finite number",
    "date": "a date YYYY-MM-DD in 1677..2262",
    "timestamp": "an ISO 8601 timestamp",
}
_PARSED_DTYPES: dict[str, str] = {
    "string": "str",
    "category": "str",
    "int": "Int64",
    "float": "float64",
    "date": "datetime64[ns]",
    "timestamp": "datetime64[ns]",
}


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
    """

    findings: list[Finding] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    source_dir: Path | None = None

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
    """Raised by :func:`load_sources` when the sources break the contract.

    ``str(exc)`` is the report's multi-line summary; ``exc.report`` holds it all.
    """

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report


# --------------------------------------------------------------------------- public API


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
        fingerprints of the files read.

    Raises
    ------
    SourceValidationError
        When any rule is broken; its text lists every finding.
    """
    folder = Path(path)
    specs = [TABLES[name] for name in MODEL_TABLES]
    report, typed = _validate_dir(folder, specs)
    if not report.ok:
        raise SourceValidationError(report)
    tables = {name: normalise_table(typed.pop(name), TABLES[name]) for name in list(typed)}
    return SourceTables(
        **tables,
        fingerprints=dict(report.fingerprints),
        source_dir=folder,
    )


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


# --------------------------------------------------------------------------- reading files


def _validate_dir(
    folder: Path, specs: Sequence[TableSpec], *, reference_only: bool = False
) -> tuple[ValidationReport, dict[str, pd.DataFrame]]:
    """Read and validate ``specs`` from ``folder``; also the parsed frames.

    With ``reference_only``, the tables that ``specs`` refer to are read only for
    the referenced columns, which are not validated themselves.
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
            findings, typed[spec.name] = _check_table(raw, spec, path.name, year)
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
        report.fingerprints = {
            name: future.result() for name, future in hashes.items() if future.exception() is None
        }
    report.findings.sort(key=_finding_order)
    return report, typed


def _scan(folder: Path, report: ValidationReport) -> tuple[dict[str, Path], list[str]]:
    """The file of each table, and the tables given twice (an error, added to ``report``).

    Entries that are not table files are noted and ignored.
    """
    candidates: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
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
        return pd.read_parquet(
            path, engine="pyarrow", columns=columns, to_pandas_kwargs={"date_as_object": False}
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


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Parsed:
    """A column converted to its kind; ``bad`` marks present values that did not convert."""

    values: pd.Series
    bad: np.ndarray


def _parse_column(raw: pd.Series, kind: Kind) -> _Parsed:
    """Convert a column, as read, to the parsed dtype of its kind (see ``_PARSED_DTYPES``)."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        raw = raw.astype(object)
    if pd.api.types.is_object_dtype(raw.dtype):
        return _parse_objects(raw, kind)
    if pd.api.types.is_string_dtype(raw.dtype):  # "str", "string", Arrow strings
        return _parse_text(raw.astype("str"), kind)
    return _parse_typed(raw, kind)


def _parse_objects(raw: pd.Series, kind: Kind) -> _Parsed:
    """Python objects: text is parsed as text, other values (dates, numbers) as typed."""
    inferred = pd.api.types.infer_dtype(raw, skipna=True)
    if inferred in ("string", "empty"):
        return _parse_text(raw.astype("str"), kind)
    is_text = np.fromiter((isinstance(v, str) for v in raw), dtype=bool, count=len(raw))
    if not is_text.any():
        return _parse_typed(raw, kind)
    text = _parse_text(raw.where(is_text).astype("str"), kind)
    other = _parse_typed(raw.where(~is_text), kind)
    return _Parsed(text.values.where(is_text, other.values), np.where(is_text, text.bad, other.bad))


def _parse_text(text: pd.Series, kind: Kind) -> _Parsed:
    empty = (text == "").to_numpy(dtype=bool)
    if empty.any():
        text = text.where(~empty)
    present = text.notna().to_numpy(dtype=bool)
    if kind in ("string", "category"):
        return _Parsed(text, np.zeros(len(text), dtype=bool))
    if kind == "int":
        ok = _matches(text, _INT_TEXT)
        return _Parsed(text.where(ok).astype("Int64"), present & ~ok)
    if kind == "float":
        ok = _matches(text, _FLOAT_TEXT)
        numbers = pd.Series(_to_floats(text.where(ok)), index=text.index)
        finite = np.isfinite(numbers.to_numpy())
        return _Parsed(numbers.where(finite), present & ~finite)
    if kind == "date":
        return _finish_datetimes(_to_dates(text.where(_matches(text, _DATE_TEXT))), present)
    zoned = text.str.contains(_ZONED_TEXT).fillna(False).to_numpy(dtype=bool)
    stamps = pd.to_datetime(text.where(~zoned), format="ISO8601", errors="coerce")
    if zoned.any():
        utc = pd.to_datetime(text.where(zoned), format="ISO8601", errors="coerce", utc=True)
        local = utc.dt.tz_convert(_AMSTERDAM).dt.tz_localize(None).astype("datetime64[us]")
        stamps = stamps.astype("datetime64[us]").where(~zoned, local)
    return _finish_datetimes(stamps, present)


def _parse_typed(values: pd.Series, kind: Kind) -> _Parsed:
    """Convert a column that is not text: numbers, booleans, datetimes or other objects."""
    present = values.notna().to_numpy(dtype=bool)
    dtype = values.dtype
    is_object = pd.api.types.is_object_dtype(dtype)
    if kind in ("int", "float") and (
        is_object
        or (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))
    ):
        numbers = pd.to_numeric(values, errors="coerce")
        if kind == "int" and pd.api.types.is_signed_integer_dtype(numbers.dtype):
            return _Parsed(numbers.astype("Int64"), np.zeros(len(values), dtype=bool))
        floats = numbers.astype("float64")
        f = floats.to_numpy()
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(f) if kind == "float" else np.isfinite(f) & (np.floor(f) == f)
            if kind == "int":
                ok &= np.abs(f) < 2.0**63
        converted = floats.where(ok)
        return _Parsed(converted if kind == "float" else converted.astype("Int64"), present & ~ok)
    if kind in ("date", "timestamp") and (is_object or pd.api.types.is_datetime64_any_dtype(dtype)):
        stamps = _datetimes(values) if is_object else values
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert(_AMSTERDAM).dt.tz_localize(None)
        if kind == "date":
            stamps = stamps.where(stamps == stamps.dt.normalize())
        return _finish_datetimes(stamps, present)
    return _Parsed(pd.Series(index=values.index, dtype=_PARSED_DTYPES[kind]), present)


def _datetimes(values: pd.Series) -> pd.Series:
    """Date and datetime objects as datetimes; anything else missing."""
    is_stamp = np.fromiter(
        (isinstance(v, dt.date | np.datetime64) for v in values), dtype=bool, count=len(values)
    )
    stamps = values.where(is_stamp)
    try:
        return pd.to_datetime(stamps, errors="coerce")
    except ValueError:  # mixed time zones
        return pd.to_datetime(stamps, errors="coerce", utc=True)


def _finish_datetimes(stamps: pd.Series, present: np.ndarray) -> _Parsed:
    """Naive ``datetime64[ns]``; values outside its range (1677..2262) count as bad."""
    values = stamps.to_numpy()
    ok = ~np.isnat(values) & (values >= _FIRST_DAY) & (values <= _LAST_DAY)
    parsed = np.where(ok, values, np.datetime64("NaT")).astype("datetime64[ns]")
    return _Parsed(pd.Series(parsed, index=stamps.index), present & ~ok)


def _matches(text: pd.Series, pattern: str) -> np.ndarray:
    return text.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)


# pandas' own converters are 5-30x slower than Arrow's on millions of strings.


def _to_floats(text: pd.Series) -> np.ndarray:
    """Numbers already checked against ``_FLOAT_TEXT`` as float64 (missing = NaN)."""
    strings = pa.array(text, from_pandas=True)
    try:
        floats = pc.cast(strings, pa.float64())
    except pa.ArrowInvalid:  # a form the regular expression allows and Arrow does not
        return pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
    return np.asarray(floats.to_numpy(zero_copy_only=False), dtype="float64")


def _to_dates(text: pd.Series) -> pd.Series:
    """Dates already checked against ``_DATE_TEXT`` as datetime64 (missing or invalid = NaT).

    Arrow's strptime rolls impossible days over (2023-02-30 becomes 2023-03-02);
    such dates are caught by comparing the parsed day with the written one.
    """
    strings = pa.array(text, from_pandas=True)
    stamps = pc.strptime(strings, format="%Y-%m-%d", unit="s", error_is_null=True)
    written_day = pc.cast(pc.utf8_slice_codeunits(strings, 8, 10), pa.int64())
    stamps = pc.if_else(pc.equal(pc.day(stamps), written_day), stamps, None)
    return pd.Series(stamps.to_pandas(), index=text.index)


# --------------------------------------------------------------------------- rules


def _check_table(
    raw: pd.DataFrame, spec: TableSpec, file: str | None, year: int
) -> tuple[list[Finding], pd.DataFrame]:
    """All single-table rules of ``spec``; also the parsed frame (contract columns only)."""
    raw = raw.reset_index(drop=True)
    findings: list[Finding] = []
    names = [str(c) for c in raw.columns]
    for name in sorted({n for n in names if names.count(n) > 1}):
        findings.append(
            _table_finding(
                "error",
                spec.name,
                file,
                "unique column names",
                f"{_where(spec.name, file)}: column {name!r} appears more than once",
                column=name,
            )
        )
    if len(set(names)) < len(names):
        raw = raw.set_axis(names, axis=1).loc[:, ~pd.Index(names).duplicated()]
    for name in names:
        if name not in spec.column_names and names.count(name) == 1:
            findings.append(
                _table_finding(
                    "warning",
                    spec.name,
                    file,
                    "extra column",
                    f"{_where(spec.name, file)}: column {name!r} is not in the contract "
                    "and is ignored",
                    column=name,
                )
            )
    parsed: dict[str, pd.Series] = {}
    bad: dict[str, np.ndarray] = {}
    for column in spec.columns:
        if column.name not in raw.columns:
            continue
        result = _parse_column(raw[column.name], column.kind)
        parsed[column.name] = result.values
        bad[column.name] = result.bad
        if result.bad.any():
            rows = np.flatnonzero(result.bad)
            findings.append(
                _row_finding(
                    spec,
                    file,
                    column.name,
                    f"type {column.kind}",
                    rows,
                    f"not {_KIND_WORDS[column.kind]}",
                    raw[column.name].iloc[rows[:50]],
                )
            )
    frame = pd.DataFrame(parsed, index=pd.RangeIndex(len(raw)))
    findings.extend(_schema_findings(frame, spec, file, year, bad))
    findings.extend(_cross_column_findings(frame, spec, file))
    return findings, frame


def _schema_findings(
    frame: pd.DataFrame, spec: TableSpec, file: str | None, year: int, bad: Mapping[str, np.ndarray]
) -> list[Finding]:
    """Run the pandera schema lazily and turn its failure cases into findings."""
    schema = table_schema(spec, current_year=year)
    try:
        schema.validate(frame, lazy=True, inplace=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    findings: list[Finding] = []
    missing = cases[cases["check"] == "column_in_dataframe"]
    for name in missing["failure_case"]:
        findings.append(
            _table_finding(
                "error",
                spec.name,
                file,
                "missing required column",
                f"{_where(spec.name, file)}: required column {name} is missing",
                column=str(name),
            )
        )
    cases = cases[cases["check"] != "column_in_dataframe"]
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        rows = group["index"].to_numpy(dtype=np.int64)
        values = group["failure_case"]
        examples: pd.Series | None = values
        if check == "not_nullable":
            keep = ~bad[column][rows]  # values that failed to parse are type errors already
            examples = None
        elif check == "field_uniqueness":
            keep = values.notna().to_numpy(dtype=bool)  # missing values are "not null" errors
        else:
            keep = np.ones(len(rows), dtype=bool)
        if not keep.any():
            continue
        rule = PANDERA_RULES.get(str(check), str(check))
        findings.append(
            _row_finding(
                spec,
                file,
                str(column),
                rule,
                np.sort(rows[keep]),
                _schema_description(schema, str(column), str(check)),
                None if examples is None else examples[keep],
            )
        )
    return findings


def _schema_description(schema: pandera.DataFrameSchema, column: str, check: str) -> str:
    if check == "not_nullable":
        return "empty"
    if check == "field_uniqueness":
        return "repeats the value of an earlier row"
    described = {c.name: c.description for c in schema.columns[column].checks}
    return str(described.get(check, check))


def _cross_column_findings(frame: pd.DataFrame, spec: TableSpec, file: str | None) -> list[Finding]:
    """Date order and "set only when" rules, where both columns are present."""
    findings: list[Finding] = []
    for order in spec.date_orders:
        if not {order.earlier, order.later} <= set(frame.columns):
            continue
        earlier, later = frame[order.earlier], frame[order.later]
        broken = later <= earlier if order.strict else later < earlier
        op = ">" if order.strict else ">="
        findings.extend(
            _mask_finding(
                spec,
                file,
                order.later,
                f"{order.later} {op} {order.earlier}",
                broken.fillna(False).to_numpy(dtype=bool),
                f"{order.later} {'not after' if order.strict else 'before'} {order.earlier}",
            )
        )
    for rule in spec.set_only_when:
        if not {rule.column, rule.when_column} <= set(frame.columns):
            continue
        broken = frame[rule.column].notna() & (frame[rule.when_column] != rule.when_value)
        findings.extend(
            _mask_finding(
                spec,
                file,
                rule.column,
                f"{rule.column} set only when {rule.when_column} == {rule.when_value}",
                broken.fillna(False).to_numpy(dtype=bool),
                f"{rule.column} set while {rule.when_column} is not {rule.when_value!r}",
            )
        )
    return findings


def _isin(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """Where ``values`` occur in ``allowed``, by Arrow (pandas' str isin is per-value Python)."""
    haystack = pa.array(allowed, from_pandas=True).drop_null()
    needles = pa.array(values, from_pandas=True)
    found = pc.is_in(needles, value_set=haystack.cast(needles.type))
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _referenced(specs: Iterable[TableSpec]) -> set[tuple[str, str]]:
    return {c.references for s in specs for c in s.columns if c.references is not None}


def _reference_findings(
    specs: Iterable[TableSpec],
    typed: Mapping[str, pd.DataFrame],
    files: Mapping[str, str],
    parents: Mapping[tuple[str, str], pd.Series],
) -> list[Finding]:
    """Every value of a referencing column must occur in the referenced column.

    A reference to a table or column that is absent is not checked: its absence is
    an error of its own.
    """
    findings: list[Finding] = []
    for spec in specs:
        frame = typed.get(spec.name)
        if frame is None:
            continue
        for column in spec.columns:
            if column.references is None or column.name not in frame.columns:
                continue
            table, key = column.references
            parent = parents.get(column.references)
            if parent is None and table in typed and key in typed[table].columns:
                parent = typed[table][key]
            if parent is None:
                continue
            child = frame[column.name]
            broken = child.notna().to_numpy(dtype=bool) & ~_isin(child, parent)
            findings.extend(
                _mask_finding(
                    spec,
                    files.get(spec.name),
                    column.name,
                    f"references {table}.{key}",
                    broken,
                    f"not found in {table}.{key}",
                )
            )
    return findings


def _presence_findings(
    specs: Iterable[TableSpec],
    present: Collection[str],
    files: Mapping[str, str],
    *,
    skip: Collection[str] = (),
    in_memory: bool = False,
) -> list[Finding]:
    """A missing required table is an error; a missing optional table is a note."""
    findings: list[Finding] = []
    for spec in specs:
        if spec.name in present or spec.name in skip:
            continue
        given = (
            "was not given"
            if in_memory
            else f"has no file ({spec.name}.csv or {spec.name}.parquet)"
        )
        if spec.required:
            findings.append(
                _table_finding(
                    "error",
                    spec.name,
                    files.get(spec.name),
                    "missing required table",
                    f"required table {spec.name} {given}",
                )
            )
            continue
        consequence = (
            "the fairness audit has no protected attributes"
            if spec.audit_only
            else "its features will be absent (not zero-filled)"
        )
        findings.append(
            _table_finding(
                "note",
                spec.name,
                files.get(spec.name),
                "missing optional table",
                f"optional table {spec.name} {given}: {consequence}",
            )
        )
    return findings


# --------------------------------------------------------------------------- findings


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
