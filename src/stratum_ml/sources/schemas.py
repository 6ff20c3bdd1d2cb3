"""Pandera schemas derived from the contract specs: the single-column rules.

:func:`table_schema` turns a :class:`~stratum_ml.sources.contract.TableSpec` into a
``pandera`` ``DataFrameSchema`` with one column per contract column and, per
column, the contract's rules as named checks: not null, unique, pattern (full
match), domain, minimum, maximum and, on identifier columns, the BSN elfproef.
The check names are the rule names that validation findings report.

The schema checks *values*, not dtypes. It is applied to the *parsed* form of a
table (see :mod:`stratum_ml.sources.validate`): every column already converted
to its kind, with values that could not be converted set to missing and
reported per row as type errors (a dtype check gives one verdict per column,
not the offending rows). Parsed dtypes: ``str`` for string and category
columns, ``Int64`` for int, ``float64`` for float, ``datetime64[ns]`` for date
and timestamp columns. The normalised tables of
:mod:`stratum_ml.sources.tables` pass the same schema.

Rules that span columns or tables (date order, conditional nulls, references)
are checked by the validator itself, vectorised, from the same specs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from stratum_ml.sources.contract import ColumnSpec, TableSpec

#: the names pandera gives its built-in checks, as contract rule names
PANDERA_RULES: dict[str, str] = {
    "not_nullable": "not null",
    "field_uniqueness": "unique",
    "column_in_dataframe": "missing required column",
}
BSN_RULE = "BSN elfproef"
_BSN_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)

SeriesCheck = Callable[[pd.Series], pd.Series]


def looks_like_bsn(values: pd.Series) -> pd.Series:
    """Where a value is a citizen service number (BSN): 9 digits passing the elfproef.

    The elfproef (11-test): with digits ``d0 .. d8``,
    ``9*d0 + 8*d1 + ... + 2*d7 - d8`` is divisible by 11; ``000000000`` is not a BSN.

    Parameters
    ----------
    values : pandas.Series
        Text values; missing values are never a BSN.

    Returns
    -------
    pandas.Series
        Boolean, aligned with ``values``.

    Examples
    --------
    >>> looks_like_bsn(pd.Series(["111222333", "123456789", "000000000", None])).tolist()
    [True, False, False, False]
    """
    text = values.astype("str")
    result = np.zeros(len(values), dtype=bool)
    nine = np.flatnonzero((text.str.len() == 9).to_numpy(dtype=bool))  # cheap pre-filter
    nine = nine[text.iloc[nine].str.fullmatch(r"[0-9]{9}").to_numpy(dtype=bool)]
    if len(nine):
        result[nine] = _elfproef(text.iloc[nine].astype("int64").to_numpy())
    return pd.Series(result, index=values.index)


def _elfproef(numbers: np.ndarray) -> np.ndarray:
    """Whether each number of at most 9 digits (written with leading zeros) passes."""
    total = np.zeros(len(numbers), dtype=np.int64)
    for position, weight in enumerate(_BSN_WEIGHTS):
        total += weight * (numbers // 10 ** (8 - position) % 10)
    passed: np.ndarray = (total % 11 == 0) & (numbers != 0)
    return passed


def holds_bsn(column: pd.Series) -> np.ndarray:
    """Where a value of a column, written as text and stripped, is a BSN (:func:`looks_like_bsn`).

    Any column as read (a Parquet column keeps its type). Writing millions of numbers
    and dates as text costs seconds per column, so the types whose text is known are
    decided without it: an integer's text is its decimal digits (9 of them for
    100000000..999999999, with no sign), so it is tested as a number; a float's text
    always holds a point or an exponent (``111222333.0``, ``1e+20``, ``inf``), a date's
    dashes and a boolean's letters, so none of them is 9 digits. Any other column
    (text, categories, Arrow types, objects) is written as text and tested.
    """
    dtype = column.dtype
    types = pd.api.types
    if isinstance(dtype, pd.ArrowDtype | pd.CategoricalDtype) or types.is_object_dtype(dtype):
        pass  # written as text below
    elif (
        types.is_float_dtype(dtype)
        or types.is_bool_dtype(dtype)
        or types.is_datetime64_any_dtype(dtype)
        or types.is_timedelta64_dtype(dtype)
    ):
        return np.zeros(len(column), dtype=bool)
    elif types.is_integer_dtype(dtype):
        nine = ((column >= 100_000_000) & (column <= 999_999_999)).fillna(False)
        rows = np.flatnonzero(nine.to_numpy(dtype=bool))
        result = np.zeros(len(column), dtype=bool)
        result[rows] = _elfproef(column.iloc[rows].to_numpy(dtype=np.int64))
        return result
    present = column.notna().to_numpy(dtype=bool)
    text = column.astype("string").str.strip()
    return looks_like_bsn(text.where(present, "")).to_numpy(dtype=bool)


def pattern_rule(pattern: str) -> str:
    """The rule name of a full-match pattern, anchored for display."""
    return f"pattern ^{pattern}$"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def min_rule(spec: ColumnSpec) -> str:
    """The rule name of a column's minimum, e.g. ``">= 1"``."""
    assert spec.min_value is not None
    return f">= {_number(spec.min_value)}"


def max_rule(spec: ColumnSpec, current_year: int) -> str:
    """The rule name of a column's maximum, e.g. ``"<= 2026 (current year)"``."""
    if spec.max_is_current_year:
        return f"<= {current_year} (current year)"
    assert spec.max_value is not None
    return f"<= {_number(spec.max_value)}"


def _fullmatch(pattern: str) -> SeriesCheck:
    return lambda s: s.str.fullmatch(pattern)


def _isin(domain: tuple[str, ...]) -> SeriesCheck:
    return lambda s: s.isin(domain)


def _at_least(bound: float) -> SeriesCheck:
    return lambda s: s >= bound


def _at_most(bound: float) -> SeriesCheck:
    return lambda s: s <= bound


def _not_bsn(s: pd.Series) -> pd.Series:
    return ~looks_like_bsn(s)


def column_checks(spec: ColumnSpec, *, current_year: int) -> list[pa.Check]:
    """The contract's value rules for one column, as named pandera checks.

    Not null and unique are not among them: they are ``pandera.Column`` options.

    Parameters
    ----------
    spec : ColumnSpec
        The contract column.
    current_year : int
        Resolves ``max_is_current_year``.

    Returns
    -------
    list of pandera.Check
        Each named by its rule (``"pattern ^...$"``, ``"domain"``, ``">= 1"``,
        ``"<= 2026 (current year)"``, ``"BSN elfproef"``), described for humans.
    """
    checks: list[pa.Check] = []
    if spec.pattern is not None:
        checks.append(
            pa.Check(
                _fullmatch(spec.pattern),
                name=pattern_rule(spec.pattern),
                description="no full match of the pattern",
            )
        )
    if spec.domain is not None:
        checks.append(
            pa.Check(
                _isin(spec.domain),
                name="domain",
                description="not one of: " + ", ".join(spec.domain),
            )
        )
    if spec.min_value is not None:
        checks.append(
            pa.Check(
                _at_least(spec.min_value),
                name=min_rule(spec),
                description=f"below the minimum {_number(spec.min_value)}",
            )
        )
    if spec.max_value is not None or spec.max_is_current_year:
        bound = current_year if spec.max_is_current_year else spec.max_value
        assert bound is not None
        what = f"{current_year}, the current year" if spec.max_is_current_year else _number(bound)
        checks.append(
            pa.Check(
                _at_most(bound),
                name=max_rule(spec, current_year),
                description=f"above the maximum {what}",
            )
        )
    if spec.identifier:
        checks.append(
            pa.Check(
                _not_bsn,
                name=BSN_RULE,
                description=(
                    "a citizen service number: 9 digits passing the elfproef; "
                    "a BSN must never enter, pseudonymise it"
                ),
            )
        )
    return checks


def table_schema(spec: TableSpec, *, current_year: int | None = None) -> pa.DataFrameSchema:
    """The pandera schema of a contract table's parsed form (single-column rules).

    Parameters
    ----------
    spec : TableSpec
        The contract table.
    current_year : int, optional
        Resolves ``max_is_current_year``; defaults to today's year.

    Returns
    -------
    pandera.DataFrameSchema
        Every contract column required (but the optional ones), extra columns
        allowed, no dtype checks.
        Validate with ``lazy=True`` to collect every failure.
    """
    year = dt.date.today().year if current_year is None else current_year
    return pa.DataFrameSchema(
        {
            c.name: pa.Column(
                None,
                checks=column_checks(c, current_year=year),
                nullable=c.nullable,
                required=not c.optional,
                unique=c.unique,
                report_duplicates="exclude_first",
                description=c.description or None,
            )
            for c in spec.columns
        },
        name=spec.name,
        description=spec.description,
    )
