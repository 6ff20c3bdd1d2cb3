"""Validate and load a source folder one table, or one block of rows, at a time.

:func:`~stratum_ml.sources.load_sources` holds every table of a folder at once; a
national folder does not fit. :class:`SourceStream` applies the same contract checks
(the same ``_check_table``, the same references, the same extract date) to one
table at a time, and a table without a unique column (registrations, usage,
ownership, businesses) one block of :data:`BATCH_ROWS` rows at a time: every rule
of such a table is a rule of each row or of each row and its referenced table, so
checking it block by block finds what checking it whole finds. A table with a
unique column (addresses, areas, reports, inspections) is checked whole.

A folder that breaks a rule is reported exactly as ``load_sources`` reports it: the
first broken rule stops the stream, and ``load_sources`` runs on the folder to list
every finding (:class:`~stratum_ml.sources.SourceValidationError`). A valid folder
never pays for that.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratum_ml.sources.contract import CONTRACT, EXTRACT_COLUMNS, MODEL_TABLES, TABLES, TableSpec
from stratum_ml.sources.extract import (
    ExtractDate,
    ExtractDateError,
    latest_date,
    read_declaration,
    resolve_extract_date,
)
from stratum_ml.sources.tables import normalise_column
from stratum_ml.sources.validate._files import _read_table_file, _scan
from stratum_ml.sources.validate._findings import Finding, ValidationReport
from stratum_ml.sources.validate._parse import _parse_column
from stratum_ml.sources.validate._rules import (
    ReferenceLookup,
    _check_table,
    _presence_findings,
    _reference_findings,
)

#: rows of a large table checked and normalised at a time
BATCH_ROWS = 1_000_000


class BrokenRule(Exception):
    """A rule is broken: the folder is reported by ``load_sources``.

    Raised by :meth:`SourceStream.read` only when ``report_broken`` is false (in a
    worker process, which leaves the report to the process that started it).
    """


_Broken = BrokenRule


def _whole(spec: TableSpec) -> bool:
    """Whether a table is checked whole: a unique column is a rule across all its rows."""
    return any(c.unique for c in spec.columns)


@dataclass
class SourceStream:
    """The model-input tables of a source folder, validated as they are read.

    Read the tables in contract order (a referenced table before the tables that
    refer to it; :meth:`tables` gives that order) with :meth:`read`; once every table
    has been read, :meth:`extract_date` checks the folder's extract date.
    Any broken rule raises :class:`~stratum_ml.sources.SourceValidationError` with
    every finding of the folder, as :func:`~stratum_ml.sources.load_sources` does.
    """

    folder: Path
    files: dict[str, Path]
    batch_rows: int = BATCH_ROWS
    year: int = field(default_factory=lambda: dt.date.today().year)
    #: whether a broken rule raises every finding (``load_sources``) or only :class:`BrokenRule`
    report_broken: bool = True
    _parents: dict[tuple[str, str], ReferenceLookup] = field(default_factory=dict)
    _latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: referenced columns read ahead of their table's check (:meth:`read_ahead`)
    _ahead: dict[tuple[str, str], pd.Series] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, batch_rows: int = BATCH_ROWS) -> SourceStream:
        """Find the folder's table files; a missing required table or a clash is an error."""
        folder = Path(path)
        if not folder.is_dir():
            raise NotADirectoryError(f"source folder {folder} is not a folder")
        report = ValidationReport(source_dir=folder)
        found, clashes = _scan(folder, report)
        files = {name: found[name] for name in MODEL_TABLES if name in found}
        stream = cls(folder=folder, files=files, batch_rows=batch_rows)
        specs = [TABLES[name] for name in MODEL_TABLES]
        presence = _presence_findings(specs, files, {}, skip=set(clashes))
        if clashes or _errors(presence):
            stream._report()
        return stream

    @property
    def tables(self) -> list[str]:
        """The model-input tables present, referenced tables first (areas, addresses, ...)."""
        order = [s.name for s in CONTRACT if s.name in self.files]
        referenced = {c.references[0] for s in CONTRACT for c in s.columns if c.references}
        return sorted(order, key=lambda name: (name not in referenced, name != "areas"))

    def read(self, name: str) -> Iterator[pd.DataFrame]:
        """The normalised rows of table ``name``, checked, in blocks in file order.

        A table with a unique column comes as one block. Each block's index runs on
        from the previous one (the row number in the file).
        """
        spec = TABLES[name]
        path = self.files[name]
        try:
            start = 0
            for raw in self._raw_blocks(path, whole=_whole(spec)):
                frame = self._checked(raw, spec, path.name)
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                self._note_dates(name, frame)
                self._keep_referenced(name, frame)
                yield frame
        except _Broken:
            if not self.report_broken:
                raise
            self._report()

    def read_columns(self, name: str, columns: list[str]) -> pd.DataFrame:
        """Columns of a table already read by :meth:`read` (so checked), normalised."""
        spec = TABLES[name]
        raw = _read_table_file(self.files[name], columns)
        out = {
            c: normalise_column(_parse_column(raw.pop(c), kind).values, spec.column(c))
            for c, kind in ((c, spec.column(c).kind) for c in columns)
        }
        return pd.DataFrame(out, index=pd.RangeIndex(len(raw)), copy=False)

    def latest_dates(self, name: str) -> dict[str, Any]:
        """The latest date of each dating column of table ``name`` read so far."""
        return dict(self._latest.get(name, {}))

    def add_latest_dates(self, name: str, latest: dict[str, Any]) -> None:
        """Count the dates of table ``name`` read by another stream (a worker's)."""
        self._latest[name] = dict(latest)

    def raise_findings(self) -> NoReturn:
        """Raise what ``load_sources`` raises for this folder (a rule broken elsewhere)."""
        self._report()

    def release_references(self) -> None:
        """Let the hashed referenced values go (every referencing table has been read)."""
        self._parents.clear()
        self._ahead.clear()

    def for_worker(self) -> SourceStream:
        """A copy of this stream to read tables in a worker process.

        It raises :class:`BrokenRule` at a broken rule (the process that started it
        reports the folder) and holds the hashed referenced values, but not the values
        read ahead (compared here when their table is read).
        """
        return dataclasses.replace(
            self,
            report_broken=False,
            _parents=dict(self._parents),
            _latest={name: dict(dates) for name, dates in self._latest.items()},
            _ahead={},
        )

    def read_ahead(self, table: str, column: str) -> pd.Series:
        """The values of a referenced column, read before its table is checked.

        The tables that refer to it may then be read before it (by copies of this
        stream in other processes, while it is checked here): their references are
        checked against these values, hashed as :meth:`read` hashes them. Only a table
        checked whole can be read ahead; it must still be read with :meth:`read`, which
        checks it and compares the column with the values read ahead (equal in a folder
        that passes: both are the file's column, parsed and normalised alike).

        Raises
        ------
        OSError, ValueError, KeyError
            When the file or the column cannot be read: a broken rule, which reading
            the table in order reports.
        """
        if not _whole(TABLES[table]):
            raise ValueError(f"{table} is checked block by block: it cannot be read ahead")
        values = self.read_columns(table, [column])[column]
        self._parents[(table, column)] = ReferenceLookup(values)
        self._ahead[(table, column)] = values
        return values

    def referenced(self, table: str, column: str) -> ReferenceLookup | None:
        """The values of a referenced column of a table already read, hashed for lookups."""
        return self._parents.get((table, column))

    def extract_date(self) -> ExtractDate:
        """The folder's extract date, once every table has been read.

        A declaration that cannot be read, or that lies on or before a date the folder
        holds, is a broken rule, as in ``load_sources``.

        Raises
        ------
        ExtractDateError
            When the folder holds no dated row and declares no date (not a broken
            rule, but no date to guard a reference date with).
        """
        frames = {
            t: pd.DataFrame({c: [v] for c, v in cols.items()}) for t, cols in self._latest.items()
        }
        try:
            declared = read_declaration(self.folder)
        except ExtractDateError:
            self._report()
        try:
            return resolve_extract_date(latest_date(frames), declared)
        except ExtractDateError:
            if declared is not None:
                self._report()
            raise

    def _raw_blocks(self, path: Path, *, whole: bool) -> Iterator[pd.DataFrame]:
        try:
            if whole or path.suffix != ".parquet":
                raw = _read_table_file(path)
                if whole or len(raw) <= self.batch_rows:
                    yield raw
                    return
                for start in range(0, len(raw), self.batch_rows):
                    yield raw.iloc[start : start + self.batch_rows].reset_index(drop=True)
                return
            file = pq.ParquetFile(path)
            for batch in file.iter_batches(batch_size=self.batch_rows):
                yield pa.Table.from_batches([batch]).to_pandas(
                    date_as_object=False, split_blocks=True, self_destruct=True
                )
        except (OSError, ValueError) as exc:
            raise _Broken from exc

    def _checked(self, raw: pd.DataFrame, spec: TableSpec, file: str) -> pd.DataFrame:
        findings, parsed = _check_table(raw, spec, file, self.year, consume=True)
        findings += _reference_findings([spec], {spec.name: parsed}, {}, self._parents)
        if _errors(findings):
            raise _Broken
        n = len(parsed)
        columns = {
            c.name: normalise_column(parsed.pop(c.name), c)
            for c in spec.columns
            if c.name in parsed.columns
        }
        return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)

    def _note_dates(self, name: str, frame: pd.DataFrame) -> None:
        latest = self._latest.setdefault(name, {})
        for column in EXTRACT_COLUMNS:
            if column.table != name or column.column not in frame.columns:
                continue
            value = frame[column.column].max()
            if pd.isna(value):
                continue
            if column.column not in latest or value > latest[column.column]:
                latest[column.column] = value

    def _keep_referenced(self, name: str, frame: pd.DataFrame) -> None:
        referenced = {
            column.references
            for spec in CONTRACT
            if spec.name in MODEL_TABLES
            for column in spec.columns
            if column.references is not None and column.references[0] == name
        }
        for table, key in sorted(referenced):
            ahead = self._ahead.pop((table, key), None)
            if ahead is None:
                self._parents[(table, key)] = ReferenceLookup(frame[key])
            elif not frame[key].equals(ahead):  # the tables that refer to it were checked
                # against the values read ahead (hashed already)
                raise RuntimeError(f"{table}.{key}: the checked values differ from those read")

    def _report(self) -> NoReturn:
        """Raise what ``load_sources`` raises for this folder: every finding."""
        from stratum_ml.sources.validate._api import load_sources

        load_sources(self.folder)
        raise RuntimeError(  # pragma: no cover - the stream and load_sources disagree
            f"{self.folder}: a rule failed while streaming but load_sources found none"
        )


def _errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
