"""Atomic file output: a reader never sees a half-written file.

Everything stratum_ml writes goes through these helpers: the content is written
to a temporary file in the target's folder, flushed and fsynced, then renamed
over the target (``os.replace`` is atomic on POSIX and Windows).

The temporary file is named ``.<target>.pid<PID>.<random>.tmp``: a process killed
while writing leaves it behind, and :func:`remove_stale_temp_files` (called at
the start of ``train`` and of the service) removes every one whose process is
gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it over ``target``.

    On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.pid{os.getpid()}.", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


_PID = re.compile(r"\.pid(\d+)\.[^.]+\.tmp$")


@contextlib.contextmanager
def process_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made, mode 0600) across processes.

    For work that several service workers on one machine must not do at once (make
    the run to serve, take a checkpoint). ``flock`` locks an open file description,
    so two threads of one process that each open the file exclude each other too.
    Local file systems only (``flock`` is not reliable on NFS).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (another user's process counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temp_files(
    folder: str | os.PathLike[str], *, unowned_after_s: float = 60.0
) -> list[Path]:
    """Remove the temporary files of writes that never finished, anywhere under ``folder``.

    A temporary file of :func:`atomic_path` names the process writing it; it is
    removed when that process is gone. One without a process id (written by an
    older version, or by another tool with the same pattern) is removed when it
    was last touched more than ``unowned_after_s`` seconds ago.

    Returns
    -------
    list of Path
        The files removed.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    removed: list[Path] = []
    now = time.time()
    for path in root.rglob(".*.tmp"):
        try:
            if not path.is_file() or path.is_symlink():
                continue
            owner = _PID.search(path.name)
            if owner is not None:
                if process_alive(int(owner.group(1))):
                    continue
            elif now - path.stat().st_mtime < unowned_after_s:
                continue
            path.unlink()
        except FileNotFoundError:  # its writer finished meanwhile
            continue
        removed.append(path)
    return removed


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    write_bytes_atomic(target, text.encode("utf-8"))


def table_format(path: str | os.PathLike[str]) -> str:
    """``"csv"`` or ``"parquet"`` from the file suffix; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(f"{path}: unsupported table format {suffix!r}; use .csv or .parquet")


#: first characters (after leading whitespace) a spreadsheet runs as a formula; a tab or
#: carriage return first moves a cell in some spreadsheets
_FORMULA_CELL = re.compile(r"^[\s\u3000]*[=+\-@\uff1d\uff0b\uff0d\uff20]|^[\t\r]")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` in which no text cell would run as a spreadsheet formula.

    A text cell that starts with ``=``, ``+``, ``-`` or ``@`` (also after
    leading whitespace, also in full width) or with a tab or carriage return
    gets a ``'`` in front, as OWASP advises for CSV exports; numbers, dates and
    other text are left as they are.

    Examples
    --------
    >>> neutralise_formulas(pd.DataFrame({"a": ["=1+1", " ok", -1]}))["a"].tolist()
    ["'=1+1", ' ok', -1]
    """
    out = df.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            risky = values.map(lambda v: isinstance(v, str) and bool(_FORMULA_CELL.match(v)))
            if risky.any():
                out[column] = values.astype(object).where(~risky, "'" + values.astype(str))
    return out


def write_frame_atomic(
    df: pd.DataFrame,
    target: str | os.PathLike[str],
    *,
    index: bool = False,
    writer: Callable[[pd.DataFrame, Path], None] | None = None,
    spreadsheet_safe: bool = True,
) -> None:
    """Write a frame as CSV or Parquet (chosen by suffix) atomically.

    A CSV file is opened in spreadsheets, so by default its text cells are
    passed through :func:`neutralise_formulas`; ``spreadsheet_safe=False``
    writes them as they are (a data file read back by programs). Parquet is
    written as it is.
    """
    fmt = table_format(target)
    with atomic_path(target) as tmp:
        if writer is not None:
            writer(df, tmp)
        elif fmt == "csv":
            (neutralise_formulas(df) if spreadsheet_safe else df).to_csv(tmp, index=index)
        else:
            df.to_parquet(tmp, index=index)


def write_frames_atomic(
    frames: Iterable[pd.DataFrame],
    target: str | os.PathLike[str],
    *,
    spreadsheet_safe: bool = True,
) -> int:
    """Write frames with the same columns, one after another, as one CSV or Parquet file.

    The file of :func:`write_frame_atomic` on the frames put together (without their
    index), but only one frame is held at a time: each frame is written as it comes,
    Parquet as one row group per frame. The first frame fixes the columns and their
    types; a later frame that does not fit them is an error. Atomic as
    :func:`write_frame_atomic`: on any error, also one raised while ``frames`` makes
    the next frame, nothing is left at ``target``.

    Returns
    -------
    int
        The rows written.

    Raises
    ------
    ValueError
        When ``frames`` is empty (there would be no columns), or a frame's columns differ
        from the first one's.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fmt = table_format(target)
    rows = 0
    columns: list[object] | None = None
    with atomic_path(target) as tmp:
        writer: pq.ParquetWriter | None = None
        try:
            for frame in frames:
                if columns is not None and list(frame.columns) != columns:
                    raise ValueError(f"{target}: a frame's columns differ from the first one's")
                if fmt == "csv":
                    out = neutralise_formulas(frame) if spreadsheet_safe else frame
                    out.to_csv(tmp, index=False, mode="a", header=columns is None)
                else:
                    schema = None if writer is None else writer.schema
                    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                    if writer is None:
                        # pandas' to_parquet: snappy, the frame's types in the metadata
                        writer = pq.ParquetWriter(tmp, table.schema, compression="snappy")
                    writer.write_table(table)
                columns = list(frame.columns)
                rows += len(frame)
            if columns is None:
                raise ValueError(f"{target}: no frame to write")
        finally:
            if writer is not None:
                writer.close()
    return rows


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def release_free_memory() -> None:
    """Hand memory already freed back to the system, so that it leaves the RSS.

    Arrow's pool (the strings of the source tables) and the C allocator (numpy)
    keep freed pages for reuse; after loading a large folder or building the
    town-wide facts that is hundreds of MiB that the next step cannot use.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
