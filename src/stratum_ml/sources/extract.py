"""The extract date of a source folder, and the one guard every dated command goes through.

A source folder is a snapshot of the registers, taken on its *extract date*:
the first day it does not cover. The date is either

* **declared** by the folder, in ``extract.json`` (:data:`EXTRACT_DECLARATION`)::

      {"extract_date": "2026-11-01"}

  and then nothing in the folder may be dated on or after it; or
* **derived**: the day after the latest date the folder holds, over every
  dated column of every table present (:data:`EXTRACT_COLUMNS`), where an
  energy ``year`` counts as its last day, 31 December (its total is known only
  once the year has ended).

As of the extract date every row of the folder lies strictly before the
reference date, so scoring as of the extract date sees the whole snapshot. A
later date would describe days nobody has seen yet, silently treating them as
quiet: :func:`guard_as_of` refuses it, for ``stratum features``, ``score``,
``evaluate`` and ``serve`` alike.

:func:`extract_date` works on loaded tables (``load_sources`` has checked the
declaration against the data already); ``sources.validate.read_extract_date``
gets the same answer from a folder reading only its dated columns.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stratum_ml.sources.contract import EXTRACT_COLUMNS, EXTRACT_DECLARATION, ExtractColumn
from stratum_ml.sources.tables import SourceTables

__all__ = [
    "AsOfAfterExtractError",
    "ExtractDate",
    "ExtractDateError",
    "LatestDate",
    "declaration_text",
    "extract_date",
    "guard_as_of",
    "latest_date",
    "read_declaration",
    "resolve_extract_date",
]

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ExtractDateError(ValueError):
    """The extract date cannot be known: a bad declaration, or no dated row at all."""


class AsOfAfterExtractError(ValueError):
    """A reference date lies after the extract date of the sources."""


@dataclass(frozen=True)
class LatestDate:
    """The latest date a folder holds, and the column (``table.column``) holding it."""

    date: dt.date
    column: str

    def __str__(self) -> str:
        return f"{self.date} in {self.column}"


@dataclass(frozen=True)
class ExtractDate:
    """The extract date of a source folder and where it comes from.

    Attributes
    ----------
    date : datetime.date
        The first day the folder does not cover.
    declared : bool
        True when the folder declares it (``extract.json``), False when derived.
    latest : LatestDate or None
        The latest date the folder holds (``None`` when it holds no dated row).
    """

    date: dt.date
    declared: bool
    latest: LatestDate | None

    @property
    def origin(self) -> str:
        """Where the date comes from, in words."""
        if self.declared:
            return f"declared in {EXTRACT_DECLARATION.file}"
        return f"derived: the day after the latest date the folder holds, {self.latest}"

    def __str__(self) -> str:
        return f"{self.date} ({self.origin})"


def _last_day(column: ExtractColumn, values: pd.Series) -> dt.date | None:
    """The latest day of one parsed column (dates, timestamps or years); None when empty."""
    if column.year:
        years = pd.to_numeric(values, errors="coerce").dropna()
        years = years[(years >= dt.MINYEAR) & (years <= dt.MAXYEAR)]
        return None if years.empty else dt.date(int(years.max()), 12, 31)
    latest = pd.to_datetime(values, errors="coerce").max()
    return None if pd.isna(latest) else pd.Timestamp(latest).date()


def latest_date(
    frames: Mapping[str, pd.DataFrame] | Iterable[tuple[str, pd.DataFrame]],
) -> LatestDate | None:
    """The latest date held by parsed source tables, over :data:`EXTRACT_COLUMNS`.

    Parameters
    ----------
    frames : mapping or iterable of (str, pandas.DataFrame)
        Table name to parsed or normalised frame; absent tables and columns are skipped.

    Returns
    -------
    LatestDate or None
        ``None`` when no dated column holds a value. Ties go to the first column in
        contract order.

    Examples
    --------
    >>> import pandas as pd
    >>> reports = pd.DataFrame({"reported_at": pd.to_datetime(["2026-10-30 14:05"])})
    >>> energy = pd.DataFrame({"year": [2025]})
    >>> str(latest_date({"reports": reports, "energy_usage": energy}))
    '2026-10-30 in reports.reported_at'
    """
    tables = dict(frames.items() if isinstance(frames, Mapping) else frames)
    best: LatestDate | None = None
    for column in EXTRACT_COLUMNS:
        frame = tables.get(column.table)
        if frame is None or column.column not in frame.columns:
            continue
        day = _last_day(column, frame[column.column])
        if day is not None and (best is None or day > best.date):
            best = LatestDate(day, column.qualified)
    return best


def declaration_text(date: dt.date) -> str:
    """The text of an ``extract.json`` that declares ``date`` (what the generator writes).

    Examples
    --------
    >>> declaration_text(dt.date(2026, 11, 1))
    '{"extract_date": "2026-11-01"}\\n'
    """
    return json.dumps({EXTRACT_DECLARATION.key: date.isoformat()}) + "\n"


def read_declaration(folder: str | Path) -> dt.date | None:
    """The extract date a folder declares in ``extract.json``; ``None`` without the file.

    The file is a JSON object with exactly one key, ``extract_date``, an ISO date.

    Raises
    ------
    ExtractDateError
        When the file cannot be read or does not hold exactly that; the message
        names the file and what is wrong.
    """
    path = Path(folder) / EXTRACT_DECLARATION.file
    if not path.is_file():
        return None
    expected = f"expected {EXTRACT_DECLARATION.example}"
    try:
        content = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ExtractDateError(f"{path.name} cannot be read ({reason}); {expected}") from None
    key = EXTRACT_DECLARATION.key
    if not isinstance(content, dict) or key not in content:
        raise ExtractDateError(f"{path.name} has no {key!r}; {expected}")
    unknown = sorted(str(k) for k in content if k != key)
    if unknown:
        raise ExtractDateError(
            f"{path.name} has unknown keys {', '.join(map(repr, unknown))}; {expected}"
        )
    value = content[key]
    try:
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ExtractDateError(
            f"{path.name}: {key} must be a date YYYY-MM-DD, not {str(value)[:40]!r}"
        ) from None


def resolve_extract_date(latest: LatestDate | None, declared: dt.date | None) -> ExtractDate:
    """The extract date from the latest date held and the declared date (if any).

    Parameters
    ----------
    latest : LatestDate or None
        What :func:`latest_date` found.
    declared : datetime.date or None
        What :func:`read_declaration` read.

    Returns
    -------
    ExtractDate
        The declared date when there is one, else the day after ``latest``.

    Raises
    ------
    ExtractDateError
        When the folder holds a date on or after the declared extract date (the
        message names the file and that date, never a row), or when there is
        neither a declaration nor a dated row.

    Examples
    --------
    >>> latest = LatestDate(dt.date(2026, 10, 31), "reports.reported_at")
    >>> str(resolve_extract_date(latest, None))
    '2026-11-01 (derived: the day after the latest date the folder holds, 2026-10-31 in reports.reported_at)'
    >>> str(resolve_extract_date(latest, dt.date(2026, 12, 1)))
    '2026-12-01 (declared in extract.json)'
    """  # noqa: E501
    if declared is not None:
        if latest is not None and latest.date >= declared:
            raise ExtractDateError(
                f"{EXTRACT_DECLARATION.file} declares the extract date {declared}, but the "
                f"folder holds a date on or after it: {latest}. An extract holds only what "
                "happened before the day it was made: correct the declared date, or remove "
                f"{EXTRACT_DECLARATION.file} to use the day after the latest date held"
            )
        return ExtractDate(declared, declared=True, latest=latest)
    if latest is None:
        raise ExtractDateError(
            "the source folder holds no dated row and declares no extract date: add "
            f"{EXTRACT_DECLARATION.file} ({EXTRACT_DECLARATION.example})"
        )
    day = latest.date + dt.timedelta(days=1) if latest.date < dt.date.max else latest.date
    return ExtractDate(day, declared=False, latest=latest)


def extract_date(tables: SourceTables) -> ExtractDate:
    """The extract date of loaded source tables.

    Parameters
    ----------
    tables : SourceTables
        From :func:`~stratum_ml.sources.load_sources` (which carries the declared
        date, if any) or built in memory (derived only).

    Returns
    -------
    ExtractDate

    Raises
    ------
    ExtractDateError
        See :func:`resolve_extract_date`.
    """
    return resolve_extract_date(latest_date(tables.items()), tables.declared_extract_date)


def guard_as_of(as_of: dt.date, extract: ExtractDate, *, what: str = "--as-of") -> dt.date:
    """Refuse a reference date after the extract date; return it otherwise.

    Every command that takes a date goes through here. The extract date itself is
    allowed: as of it, every row of the folder lies before the reference date.

    Parameters
    ----------
    as_of : datetime.date
        The reference date asked for.
    extract : ExtractDate
        The extract date of the sources (:func:`extract_date`).
    what : str
        How the user gave the date (``--as-of``, ``STRATUM_AS_OF``), for the message.

    Returns
    -------
    datetime.date
        ``as_of``, unchanged.

    Raises
    ------
    AsOfAfterExtractError
        With a sentence naming the extract date and where it comes from.

    Examples
    --------
    >>> extract = ExtractDate(dt.date(2026, 11, 1), declared=True, latest=None)
    >>> guard_as_of(dt.date(2026, 11, 1), extract)
    datetime.date(2026, 11, 1)
    >>> guard_as_of(dt.date(2031, 1, 1), extract)
    Traceback (most recent call last):
    ...
    stratum_ml.sources.extract.AsOfAfterExtractError: --as-of 2031-01-01 is after the extract date of the sources, 2026-11-01 (declared in extract.json): they hold nothing from that day on, so the days after it would look quiet. Use a date on or before 2026-11-01.
    """  # noqa: E501
    if as_of > extract.date:
        raise AsOfAfterExtractError(
            f"{what} {as_of} is after the extract date of the sources, {extract}: they hold "
            "nothing from that day on, so the days after it would look quiet. Use a date on "
            f"or before {extract.date}."
        )
    return as_of
