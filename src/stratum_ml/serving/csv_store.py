"""An append-only CSV store shared by the feedback (outcomes) and decision stores.

Several BentoML worker processes may write at once, so every change happens under a
process-level lock and an OS file lock (``fcntl.flock`` on ``<file>.lock``); the new
content is written to a temporary file and renamed over the old one
(:func:`stratum_ml.io.atomic_path`), with mode 0600: a reader never sees half a row,
and nobody but the service's user can read the store.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from stratum_ml.io import atomic_path


def read_text_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """The store as text columns; empty (with ``columns``) when the file does not exist."""
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
    return pd.read_csv(path, dtype="str", keep_default_na=False, na_values=[""])


class CsvAppendStore:
    """Rows are only ever added; each addition rewrites the file atomically under a lock."""

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self._lock = threading.Lock()

    @contextmanager
    def locked(self) -> Iterator[pd.DataFrame]:
        """Hold the store's locks and yield its current rows (as text)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            lock_file = self.path.with_name(self.path.name + ".lock")
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield read_text_table(self.path, self.columns)
            finally:
                os.close(fd)  # releases the lock

    def append_locked(self, existing: pd.DataFrame, row: pd.DataFrame) -> None:
        """Write ``existing`` plus ``row``; call only inside :meth:`locked`."""
        combined = pd.concat([existing, row], ignore_index=True) if len(existing) else row
        with atomic_path(self.path) as tmp:
            combined.to_csv(tmp, index=False)
            os.chmod(tmp, 0o600)
