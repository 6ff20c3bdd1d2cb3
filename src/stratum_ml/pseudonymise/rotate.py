"""Key rotation: a new key, and every pseudonymised folder of the history made again with it.

A keyed hash cannot be re-keyed without the value it hashed, so rotation needs
the raw extracts. Two designs were possible: a translation table (old pseudonym
-> new pseudonym, built by hashing the raw values with both keys) applied to
the existing folders, or pseudonymising the raw extracts again with the new
key. stratum_ml does the second:

* a translation table is exactly the bridge a rotation should burn: whoever
  holds data pseudonymised under the old (perhaps leaked) key could link it to
  the new data through it; re-running from the raw extracts leaves no such file;
* it is the same streaming, checked code path as :func:`~.run.pseudonymise`
  (memory bounded by a chunk, every folder re-validated by construction);
* the data steward keeps the raw extracts anyway: re-identification needs them.

:func:`rotate_key` checks first that each source folder was made from its raw
folder with the old key (the first rows of each pseudonym column must agree),
then writes every new folder and the new key file into temporary places, and
only when all are complete moves the key into place and swaps the folders. If
anything fails before that, nothing has changed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stratum_ml.pseudonymise.keys import KeyFileError, PseudonymKey, check_outside, write_key_file
from stratum_ml.pseudonymise.mapping import Mapping, PseudonymColumn
from stratum_ml.pseudonymise.run import (
    PseudonymisationError,
    _TablePseudonymiser,
    find_raw_file,
    pseudonymise_into,
    read_raw_batches,
)
from stratum_ml.sources.contract import EXTRACT_DECLARATION
from stratum_ml.sources.extract import declaration_text, read_declaration

__all__ = ["RotationReport", "rotate_key"]

_CHECK_ROWS = 1000


@dataclass(frozen=True)
class RotationReport:
    """What a rotation did: the new key's id and the folders made again."""

    old_key_id: str
    new_key_id: str
    key_file: Path
    folders: list[tuple[Path, Path, int]]  # (raw folder, source folder, rows)

    def summary(self) -> str:
        """Lines for the data steward (no values, no key)."""
        lines = [
            f"rotated pseudonym key {self.old_key_id} -> {self.new_key_id} ({self.key_file})",
            f"re-pseudonymised the whole history in one go, {len(self.folders)} source folder(s):",
        ]
        lines += [f"  {src} <- {raw} ({rows:,} rows)" for raw, src, rows in self.folders]
        lines.append(
            "links hold within the new key; copies made with the old key no longer link. "
            "Destroy the old key file once no one needs it."
        )
        return "\n".join(lines)


def _first_values(folder: Path, table: str, column: str) -> list[str | None]:
    for suffix in (".parquet", ".csv"):
        path = folder / f"{table}{suffix}"
        if not path.is_file():
            continue
        if suffix == ".parquet":
            pf = pq.ParquetFile(path)
            batch = next(pf.iter_batches(batch_size=_CHECK_ROWS, columns=[column]), None)
        else:
            opts = pacsv.ConvertOptions(
                column_types={column: pa.string()}, include_columns=[column]
            )
            batch = next(iter(pacsv.open_csv(path, convert_options=opts)), None)
        return [] if batch is None else batch.column(0).to_pylist()[:_CHECK_ROWS]
    raise PseudonymisationError(f"{folder} has no {table} table")


def _check_made_with(raw_dir: Path, source_dir: Path, mapping: Mapping, old: PseudonymKey) -> None:
    """Refuse a source folder not made from ``raw_dir`` with ``old``."""
    for table, tm in mapping.tables.items():
        hasher = _TablePseudonymiser(old, tm)
        for column, spec in tm.columns.items():
            if not isinstance(spec, PseudonymColumn):
                continue
            path = find_raw_file(raw_dir, tm.file)
            batch = next(read_raw_batches(path, [spec.source], _CHECK_ROWS), None)
            expected: list[str | None] = []
            if batch is not None:
                expected = hasher.column(column, spec.domain, batch.column(0))[0].to_pylist()
            have = _first_values(source_dir, table, column)
            n = min(len(have), len(expected))  # the first batches may differ in length
            if have[:n] != expected[:n] or (n == 0 and len(have) != len(expected)):
                raise PseudonymisationError(
                    f"{source_dir} was not made from {raw_dir} with the old key "
                    f"({table}.{column} differs): give each source folder with the raw "
                    "folder it was made from, and the key it was made with"
                )


def rotate_key(
    old: PseudonymKey,
    new_key_file: str | os.PathLike[str],
    mapping: Mapping,
    history: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    *,
    fmt: str = "parquet",
    chunk_rows: int = 500_000,
) -> RotationReport:
    """Create a new key and re-pseudonymise every ``(raw folder, source folder)`` with it.

    Parameters
    ----------
    old
        The key the source folders were made with.
    new_key_file
        Where to write the new key (must not exist; mode 0600; outside every source folder).
    mapping
        The mapping the folders were made with.
    history
        Pairs of a raw folder and the source folder made from it.
    fmt
        Output format of the new folders.
    chunk_rows
        Rows held in memory at a time.

    Raises
    ------
    PseudonymisationError
        A folder was not made from its raw folder with ``old``, or a raw
        extract cannot be pseudonymised; nothing changed.
    KeyFileError
        ``new_key_file`` exists or lies inside a source folder; nothing changed.
    """
    new_path = Path(new_key_file)
    pairs = [(Path(r), Path(s)) for r, s in history]
    if not pairs:
        raise PseudonymisationError("no (raw folder, source folder) pair to rotate")
    if new_path.exists():
        raise KeyFileError(f"{new_path} already exists; a key file is never overwritten")
    check_outside(new_path.parent / new_path.name, [s for _, s in pairs])
    for raw_dir, source_dir in pairs:
        if not source_dir.is_dir():
            raise PseudonymisationError(f"{source_dir} is not a folder")
        _check_made_with(raw_dir, source_dir, mapping, old)
    new = PseudonymKey.new()
    temps: list[Path] = []
    staged_key = new_path.with_name(f".{new_path.name}.{secrets.token_hex(4)}.staged")
    try:
        write_key_file(new, staged_key)
        rows = []
        for raw_dir, source_dir in pairs:
            tmp = Path(
                tempfile.mkdtemp(
                    prefix=f".{source_dir.name}.", suffix=".rotating", dir=source_dir.parent
                )
            )
            temps.append(tmp)
            report = pseudonymise_into(raw_dir, mapping, tmp, new, fmt=fmt, chunk_rows=chunk_rows)
            declared = read_declaration(raw_dir)
            if declared is not None:
                (tmp / EXTRACT_DECLARATION.file).write_text(declaration_text(declared), "utf-8")
            rows.append(sum(t.rows for t in report.tables))
        os.link(staged_key, new_path)  # fails if the path appeared meanwhile
    except BaseException:
        for tmp in temps:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        staged_key.unlink(missing_ok=True)
    for (_, source_dir), tmp in zip(pairs, temps, strict=True):
        old_copy = source_dir.with_name(f".{source_dir.name}.{secrets.token_hex(4)}.old")
        os.replace(source_dir, old_copy)
        os.replace(tmp, source_dir)
        shutil.rmtree(old_copy)
    done = [(r, s, n) for (r, s), n in zip(pairs, rows, strict=True)]
    return RotationReport(old.key_id, new.key_id, new_path, done)
