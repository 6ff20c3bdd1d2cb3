"""Parse a column, as read, to the dtype of its contract kind; mark what does not convert."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stratum_ml.sources.contract import Kind

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
