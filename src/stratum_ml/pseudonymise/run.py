"""Pseudonymise raw extracts into a source folder, streaming, chunk by chunk.

:func:`pseudonymise` runs these steps for each table of the mapping:

1. find the raw file (``<file>``, ``<file>.csv`` or ``<file>.parquet``) and
   name the raw columns the mapping does not use (they are never read);
2. read the mapped columns in chunks of about ``chunk_rows`` rows (CSV: blocks
   cut at line ends, each parsed by pyarrow with every column as text;
   Parquet: row batches);
3. per chunk, pseudonymise each identifier column: normalise its distinct
   values (:mod:`~stratum_ml.pseudonymise.normalise`), hash the valid ones
   (:class:`~stratum_ml.pseudonymise.pseudonym.Pseudonymiser`), and note the
   row numbers of missing or invalid values — never the values;
4. refuse any other output column holding a 9-digit value that passes the
   elfproef (a BSN mapped as a plain column by mistake);
5. append the chunk to the table's output file.

Memory is bounded by a chunk (plus a bounded cache of recent pseudonyms).
Everything is written into a temporary folder beside ``out_dir``, which is
renamed to ``out_dir`` only when every table is complete and no row was
refused; otherwise it is removed and nothing is left behind.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stratum_ml.pseudonymise.keys import PseudonymKey, check_outside
from stratum_ml.pseudonymise.mapping import Mapping, PseudonymColumn, TableMapping
from stratum_ml.pseudonymise.normalise import (
    elfproef,
    normalise_bsn,
    normalise_family_names,
    normalise_owner,
)
from stratum_ml.pseudonymise.pseudonym import Pseudonymiser
from stratum_ml.sources.contract import EXTRACT_DECLARATION, TABLES
from stratum_ml.sources.extract import declaration_text, read_declaration

__all__ = [
    "PseudonymisationError",
    "PseudonymisationReport",
    "TableRun",
    "find_raw_file",
    "pseudonymise",
    "csv_blocks",
    "read_raw_batches",
]

DEFAULT_CHUNK_ROWS = 100_000
MAX_ROWS_SHOWN = 10
_CACHE_MAX = 1 << 16  # distinct raw values remembered across chunks, per column

#: the normaliser of each domain, and what an invalid value is called
NORMALISERS: dict[str, tuple[Callable[[list[str | None]], list[str | None]], str]] = {
    "person": (normalise_bsn, "not a BSN (9 digits passing the elfproef)"),
    "family_name": (normalise_family_names, "an empty family name"),
    "owner": (normalise_owner, "neither a BSN (9 digits, elfproef) nor a KvK number (8 digits)"),
}
_BSN_IN_OUTPUT = "a BSN (9 digits passing the elfproef) in a column that is not pseudonymised"


class PseudonymisationError(ValueError):
    """The raw extracts cannot be pseudonymised; nothing was written.

    The message names tables, columns and row numbers, never a value.
    """


@dataclass
class TableRun:
    """What happened to one table."""

    table: str
    raw_file: str
    rows: int = 0
    dropped: list[str] = field(default_factory=list)


@dataclass
class PseudonymisationReport:
    """The outcome of :func:`pseudonymise`."""

    out_dir: Path
    key_id: str
    tables: list[TableRun]
    ignored_files: list[str]
    extract_date_copied: bool

    def summary(self) -> str:
        """Lines for the person running the step (no values, no key)."""
        lines = [f"pseudonymised with key {self.key_id} into {self.out_dir}:"]
        for t in self.tables:
            lines.append(f"  {t.table:<18}{t.rows:>12,} rows  from {t.raw_file}")
            if t.dropped:
                lines.append(f"  {'':<18}dropped (not mapped): {', '.join(t.dropped)}")
        if self.ignored_files:
            lines.append(f"raw files not in the mapping, ignored: {', '.join(self.ignored_files)}")
        if self.extract_date_copied:
            lines.append(f"copied the raw folder's {EXTRACT_DECLARATION.file}")
        return "\n".join(lines)


@dataclass
class _Problems:
    """Rows refused, by (table, column, what): their count and the first row numbers."""

    found: dict[tuple[str, str, str], tuple[int, list[int]]] = field(default_factory=dict)

    def add(self, table: str, column: str, what: str, rows: np.ndarray) -> None:
        if not len(rows):
            return
        n, shown = self.found.get((table, column, what), (0, []))
        room = MAX_ROWS_SHOWN - len(shown)
        self.found[(table, column, what)] = (n + len(rows), shown + rows[:room].tolist())

    def message(self) -> str:
        lines = ["the raw extracts cannot be pseudonymised; nothing was written:"]
        for (table, column, what), (n, rows) in self.found.items():
            more = f" and {n - len(rows):,} more" if n > len(rows) else ""
            where = ", ".join(str(r) for r in rows)
            lines.append(f"  {table}.{column}: {n:,} row(s) with {what}: rows {where}{more}")
        lines.append("  (row 1 is the first data row of the raw file; values are never shown)")
        return "\n".join(lines)


def find_raw_file(raw_dir: Path, name: str) -> Path:
    """The raw file ``name`` (``name`` itself, or with ``.csv`` / ``.parquet``).

    Raises
    ------
    PseudonymisationError
        When there is none, or both a CSV and a Parquet file.
    """
    if Path(name).suffix in (".csv", ".parquet"):
        candidates = [raw_dir / name]
    else:
        candidates = [raw_dir / f"{name}.csv", raw_dir / f"{name}.parquet"]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise PseudonymisationError(
            f"{raw_dir}: no raw file {' or '.join(c.name for c in candidates)}"
        )
    if len(found) > 1:
        raise PseudonymisationError(
            f"{raw_dir}: both {found[0].name} and {found[1].name}; keep one"
        )
    return found[0]


def raw_column_names(path: Path) -> list[str]:
    """The columns of a raw file, read from its header (CSV) or schema (Parquet)."""
    if path.suffix == ".parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh), [])


def csv_blocks(path: Path, block_bytes: int) -> Iterator[tuple[bytes, bytes]]:
    """The header line of a CSV file, and its rows in blocks of about ``block_bytes`` bytes.

    Each block ends at a line end outside quotes (an even number of ``"`` before
    the cut, so a quoted field holding a line break is never split; an escaped
    ``""`` counts twice and keeps the parity), and holds at least one whole line
    however long. Only one block (plus the unfinished line carried into the
    next) is held at a time: the file is never read ahead.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = f.write_bytes(b'a,b\\n1,"x\\ny"\\n2,z\\n3,w')
    >>> [(h, b) for h, b in csv_blocks(f, 4)]  # doctest: +NORMALIZE_WHITESPACE
    [(b'a,b\\n', b'1,"x\\ny"\\n'), (b'a,b\\n', b'2,z\\n'), (b'a,b\\n', b'3,w')]
    """
    with open(path, "rb") as fh:
        header = fh.readline()
        while header.count(b'"') % 2:  # a quoted header name with a line break
            more = fh.readline()
            if not more:
                break
            header += more
        header = header.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
        carry = b""
        while data := fh.read(block_bytes):
            buf = carry + data
            cut = _last_line_end(buf)
            if cut == 0:
                carry = buf
                continue
            yield header, buf[:cut]
            carry = buf[cut:]
        if carry.strip():
            yield header, carry


def _last_line_end(buf: bytes) -> int:
    """The position just after the last line break in ``buf`` outside quotes (0: none)."""
    quotes_after = 0
    end = len(buf)
    pos = buf.rfind(b"\n")
    parity = buf.count(b'"') % 2
    while pos >= 0:
        quotes_after += buf.count(b'"', pos + 1, end)
        end = pos + 1
        if (parity - quotes_after) % 2 == 0:
            return pos + 1
        pos = buf.rfind(b"\n", 0, pos)
    return 0


def read_raw_batches(
    path: Path, columns: list[str], chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pa.RecordBatch]:
    """Stream ``columns`` of a raw file in batches of about ``chunk_rows`` rows.

    CSV columns are read as text (an empty field is missing), so that a
    batch never disagrees with another about a column's type. A CSV file is
    cut into blocks of about ``chunk_rows * 64`` bytes at line ends
    (:func:`csv_blocks`) and each block is parsed on its own, so memory holds
    one block and its columns, whatever the size of the file (pyarrow's
    streaming reader reads ahead of its consumer, up to the whole file).
    """
    if path.suffix == ".parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns)
        return
    names = raw_column_names(path)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in names},
        include_columns=columns,
        strings_can_be_null=True,
        null_values=[""],
    )
    block_bytes = max(1 << 16, min(chunk_rows * 64, 64 << 20))
    for header, block in csv_blocks(path, block_bytes):
        table = pacsv.read_csv(
            pa.BufferReader(header + block),
            read_options=pacsv.ReadOptions(
                use_threads=False, block_size=len(header) + len(block) + 1
            ),
            convert_options=convert,
        )
        yield from table.to_batches()


class _TablePseudonymiser:
    """Pseudonymises the identifier columns of one table's batches, with a bounded cache."""

    def __init__(
        self, key: PseudonymKey, mapping: TableMapping, cache_max: int = _CACHE_MAX
    ) -> None:
        self.cache_max = cache_max
        self.hashers = {
            column: Pseudonymiser(key.secret, spec.domain)
            for column, spec in mapping.columns.items()
            if isinstance(spec, PseudonymColumn)
        }
        self.caches: dict[str, dict[str, str | None]] = {c: {} for c in self.hashers}

    def column(self, name: str, domain: str, values: pa.Array) -> tuple[pa.Array, np.ndarray]:
        """The pseudonyms of ``values``, and the positions of missing or invalid values."""
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        if not pa.types.is_string(values.type):
            values = pc.cast(values, pa.string())
        encoded = pc.dictionary_encode(values)
        distinct: list[str | None] = encoded.dictionary.to_pylist()
        cache = self.caches[name]
        todo = [v for v in distinct if v not in cache]
        if len(cache) + len(todo) > self.cache_max:
            cache.clear()
            todo = distinct
        if todo:
            normalise = NORMALISERS[domain][0]
            normal = normalise(todo)
            valid = [n for n in normal if n is not None]
            hashed = iter(self.hashers[name](valid))
            for raw, n in zip(todo, normal, strict=True):
                cache[raw] = None if n is None else next(hashed)  # type: ignore[index]
        pseudonyms = [cache[v] for v in distinct]  # type: ignore[index]
        indices = encoded.indices
        out = pc.take(pa.array(pseudonyms, type=pa.string()), indices)
        return out, np.flatnonzero(out.is_null().to_numpy(zero_copy_only=False))


def bsn_positions(values: pa.Array) -> np.ndarray:
    """Positions of values that are 9-digit numbers passing the elfproef (text or integers).

    Examples
    --------
    >>> bsn_positions(pa.array(["111222333", "P111222333", None, "123456789"])).tolist()
    [0]
    >>> bsn_positions(pa.array([111222333, 12])).tolist()
    [0]
    """
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        nine = pc.fill_null(pc.match_substring_regex(values, r"^[0-9]{9}$"), False)
        where: np.ndarray = np.flatnonzero(nine.to_numpy(zero_copy_only=False))
        if not len(where):
            return where
        numbers = np.array(pc.take(values, pa.array(where)).to_pylist(), dtype=np.int64)
        found: np.ndarray = where[elfproef(numbers)]
        return found
    if pa.types.is_integer(values.type):
        v: np.ndarray = values.to_numpy(zero_copy_only=False)
        v = np.where(np.isnan(v), 0, v).astype(np.int64) if v.dtype.kind == "f" else v
        ints = np.flatnonzero((v >= 100_000_000) & (v <= 999_999_999))
        hits: np.ndarray = ints[elfproef(v[ints].astype(np.int64))]
        return hits
    return np.zeros(0, dtype=np.int64)


def _output_schema(table: str, mapping: TableMapping, raw_schema: pa.Schema | None) -> pa.Schema:
    fields = []
    for column in TABLES[table].column_names:
        if column not in mapping.columns:  # an optional column the mapping leaves out
            continue
        spec = mapping.columns[column]
        if isinstance(spec, PseudonymColumn) or raw_schema is None:
            fields.append(pa.field(column, pa.string()))
        else:
            raw_type = raw_schema.field(spec).type
            fields.append(pa.field(column, raw_type))
    return pa.schema(fields)


class _Writer:
    def __init__(self, path: Path, schema: pa.Schema, fmt: str) -> None:
        if fmt == "parquet":
            self._w: Any = pq.ParquetWriter(path, schema, compression="zstd")
        else:
            self._w = pacsv.CSVWriter(path, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self._w.write(batch)

    def close(self) -> None:
        self._w.close()


def _pseudonymise_table(
    table: str,
    tm: TableMapping,
    raw_dir: Path,
    tmp: Path,
    key: PseudonymKey,
    fmt: str,
    chunk_rows: int,
    problems: _Problems,
) -> TableRun:
    path = find_raw_file(raw_dir, tm.file)
    present = raw_column_names(path)
    missing = [c for c in tm.raw_columns if c not in present]
    if missing:
        raise PseudonymisationError(
            f"{path.name} (table {table}) has no column {', '.join(map(repr, missing))}, "
            "which the mapping maps; nothing was written"
        )
    run = TableRun(table, path.name, dropped=[c for c in present if c not in tm.raw_columns])
    raw_schema = pq.ParquetFile(path).schema_arrow if path.suffix == ".parquet" else None
    schema = _output_schema(table, tm, raw_schema)
    hasher = _TablePseudonymiser(key, tm)
    writer = _Writer(tmp / f"{table}.{fmt}", schema, fmt)
    try:
        for batch in read_raw_batches(path, tm.raw_columns, chunk_rows):
            arrays = []
            for column in schema.names:
                spec = tm.columns[column]
                if isinstance(spec, PseudonymColumn):
                    out, bad = hasher.column(column, spec.domain, batch.column(spec.source))
                    problems.add(table, column, NORMALISERS[spec.domain][1], run.rows + bad + 1)
                else:
                    out = batch.column(spec)
                    problems.add(table, column, _BSN_IN_OUTPUT, run.rows + bsn_positions(out) + 1)
                arrays.append(out)
            run.rows += batch.num_rows
            if not problems.found:
                writer.write(pa.RecordBatch.from_arrays(arrays, schema=schema))
    finally:
        writer.close()
    return run


def pseudonymise(
    raw_dir: str | os.PathLike[str],
    mapping: Mapping,
    out_dir: str | os.PathLike[str],
    key: PseudonymKey,
    *,
    fmt: str = "parquet",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> PseudonymisationReport:
    """Pseudonymise the raw extracts in ``raw_dir`` into the source folder ``out_dir``.

    Parameters
    ----------
    raw_dir
        Folder with the raw extracts (CSV or Parquet), named as the mapping says;
        an ``extract.json`` in it is checked and copied.
    mapping
        The checked mapping (:func:`~stratum_ml.pseudonymise.mapping.load_mapping`).
    out_dir
        The source folder to create; it must not exist or be empty.
    key
        The pseudonymisation key; its file must lie outside ``out_dir``.
    fmt
        ``"parquet"`` or ``"csv"``: the format of the output tables.
    chunk_rows
        Rows read, and held in memory, at a time.

    Returns
    -------
    PseudonymisationReport
        Rows per table, dropped columns, ignored raw files.

    Raises
    ------
    PseudonymisationError
        A raw file or a mapped column is missing, or rows were refused (named
        by table, column and row number); nothing is written.
    FileExistsError
        ``out_dir`` exists and is not an empty folder.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be 'csv' or 'parquet', not {fmt!r}")
    if not raw_dir.is_dir():
        raise PseudonymisationError(f"{raw_dir} is not a folder")
    if key.path is not None:
        check_outside(key.path, [out_dir])
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} already exists and is not an empty folder")
    declared = read_declaration(raw_dir)  # checked before anything is written
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        report = pseudonymise_into(raw_dir, mapping, tmp, key, fmt=fmt, chunk_rows=chunk_rows)
        if declared is not None:
            (tmp / EXTRACT_DECLARATION.file).write_text(declaration_text(declared), "utf-8")
        _fsync_folder(tmp)
        if out_dir.exists():
            out_dir.rmdir()  # checked empty above
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.out_dir = out_dir
    report.extract_date_copied = declared is not None
    return report


def pseudonymise_into(
    raw_dir: Path, mapping: Mapping, folder: Path, key: PseudonymKey, *, fmt: str, chunk_rows: int
) -> PseudonymisationReport:
    """The tables of :func:`pseudonymise`, written into an existing (temporary) folder."""
    problems = _Problems()
    runs = [
        _pseudonymise_table(table, tm, raw_dir, folder, key, fmt, chunk_rows, problems)
        for table, tm in mapping.tables.items()
    ]
    if problems.found:
        raise PseudonymisationError(problems.message())
    used = {find_raw_file(raw_dir, tm.file).name for tm in mapping.tables.values()}
    ignored = sorted(
        p.name
        for p in raw_dir.iterdir()
        if p.is_file() and p.name not in used and p.name != EXTRACT_DECLARATION.file
    )
    return PseudonymisationReport(folder, key.key_id, runs, ignored, False)


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
