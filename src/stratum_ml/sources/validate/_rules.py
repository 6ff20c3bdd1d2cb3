"""The rules of the contract: single-table (schema, cross-column) and cross-table rules."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa
import pyarrow.compute as pc

from stratum_ml.sources.contract import TableSpec
from stratum_ml.sources.geometry import GEOMETRY_PROBLEMS, geometry_problems
from stratum_ml.sources.schemas import BSN_RULE, PANDERA_RULES, holds_bsn, table_schema
from stratum_ml.sources.validate._findings import (
    MAX_ROWS,
    ROWS_EXPLAINED,
    Finding,
    _mask_finding,
    _row_finding,
    _table_finding,
    _where,
)
from stratum_ml.sources.validate._parse import _KIND_WORDS, _parse_column


def _check_table(
    raw: pd.DataFrame, spec: TableSpec, file: str | None, year: int, *, consume: bool = False
) -> tuple[list[Finding], pd.DataFrame]:
    """All single-table rules of ``spec``; also the parsed frame (contract columns only).

    With ``consume`` the contract columns of ``raw`` (a frame of the caller's own,
    as read) are deleted from it once parsed, so that a large table is not held
    both as read and parsed. The parsed frame keeps one block per column.
    """
    if not (consume and raw.index.equals(pd.RangeIndex(len(raw)))):
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
    findings.extend(holders := _bsn_column_findings(raw, spec, file))
    with_bsns = {f.column for f in holders}
    for name in names:
        if name not in spec.column_names and names.count(name) == 1 and name not in with_bsns:
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
        as_read = raw[column.name]
        result = _parse_column(as_read, column.kind)
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
                    as_read.iloc[rows[:50]],
                )
            )
        del as_read
        if consume:
            del raw[column.name]
    frame = pd.DataFrame(parsed, index=pd.RangeIndex(len(raw)), copy=False)
    del parsed
    findings.extend(_schema_findings(frame, spec, file, year, bad))
    findings.extend(_cross_column_findings(frame, spec, file))
    return findings, frame


def _bsn_column_findings(raw: pd.DataFrame, spec: TableSpec, file: str | None) -> list[Finding]:
    """An error for every column, contract or extra, whatever its name, that holds a BSN.

    Identifier columns are left to the schema's own elfproef rule. Values are
    read as text (a Parquet integer as its digits); the error names the rows,
    never the values.
    """
    findings: list[Finding] = []
    for name in dict.fromkeys(str(c) for c in raw.columns):
        if name in spec.column_names and spec.column(name).identifier:
            continue
        column = raw[name]
        if isinstance(column, pd.DataFrame):  # a duplicated name: reported above
            continue
        rows = np.flatnonzero(holds_bsn(column))
        if not len(rows):
            continue
        shown = ", ".join(str(int(r) + 1) for r in rows[:MAX_ROWS])
        shown += ", ..." if len(rows) > MAX_ROWS else ""
        findings.append(
            Finding(
                severity="error",
                table=spec.name,
                file=file,
                column=name,
                rule=BSN_RULE,
                rows=[int(r) + 1 for r in rows[:MAX_ROWS]],
                n_failed=len(rows),
                message=(
                    f"{_where(spec.name, file)}, column {name}: {len(rows):,} "
                    f"{'row holds' if len(rows) == 1 else 'rows hold'} a citizen service "
                    f"number (9 digits passing the elfproef); rows {shown} ({ROWS_EXPLAINED}); "
                    "a BSN must never enter a source folder, whatever the column is called: "
                    "drop the column or pseudonymise it; the values are never shown"
                ),
            )
        )
    return findings


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
    for when in spec.patterns_when:
        if not {when.column, when.when_column} <= set(frame.columns):
            continue
        values = frame[when.column]
        applies = (frame[when.when_column] == when.when_value).fillna(False).to_numpy(dtype=bool)
        matches = values.str.fullmatch(when.pattern).fillna(True).to_numpy(dtype=bool)
        own = spec.column(when.column).pattern
        if own is not None:  # a value breaking the column's own pattern is reported already
            matches = matches | ~values.str.fullmatch(own).fillna(True).to_numpy(dtype=bool)
        findings.extend(
            _mask_finding(
                spec,
                file,
                when.column,
                f"{when.column} ^{when.pattern}$ when {when.when_column} == {when.when_value}",
                applies & ~matches,
                f"a {when.when_value} code must match ^{when.pattern}$",
            )
        )
    for geometry in spec.geometries:
        if not {geometry.column, geometry.crs_column} <= set(frame.columns):
            continue
        problems = geometry_problems(frame[geometry.column], frame[geometry.crs_column])
        for name, mask in problems.items():
            findings.extend(
                _mask_finding(spec, file, geometry.column, name, mask, GEOMETRY_PROBLEMS[name])
            )
    return findings


class ReferenceLookup:
    """The values of a referenced column, hashed once, to check many blocks of references.

    Arrow's ``is_in`` hashes the referenced column at every call: checking a table of
    ``n`` blocks against ``m`` addresses costs ``n * m``, which at national scale (300
    blocks, 10M addresses) is most of the validation. Here the distinct values are
    hashed once; each block looks up only its own distinct values.
    """

    def __init__(self, values: pd.Series) -> None:
        present = values.dropna().to_numpy(dtype=object)
        self._index = pd.Index(pd.unique(present), dtype=object)

    def __len__(self) -> int:
        return len(self._index)

    def positions(self, values: pd.Series) -> np.ndarray:
        """The position of each of ``values`` among the distinct referenced values, in the
        order first seen (-1: absent or missing)."""
        array = pa.array(values, from_pandas=True)
        if isinstance(array, pa.ChunkedArray):  # a column read from Arrow, in its chunks
            array = array.combine_chunks()
        encoded = pc.dictionary_encode(array)
        distinct = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object, copy=False)
        found = np.append(self._index.get_indexer(distinct), -1)  # code -1: missing
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        result: np.ndarray = found[codes]
        return result

    def contains(self, values: pd.Series) -> np.ndarray:
        """Where each of ``values`` occurs (a missing value never does)."""
        found: np.ndarray = self.positions(values) >= 0
        return found


def _isin(values: pd.Series, allowed: pd.Series | ReferenceLookup) -> np.ndarray:
    """Where ``values`` occur in ``allowed``, by Arrow (pandas' str isin is per-value Python)."""
    if isinstance(allowed, ReferenceLookup):
        return allowed.contains(values)
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
    parents: Mapping[tuple[str, str], pd.Series | ReferenceLookup],
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
            parent: pd.Series | ReferenceLookup | None = parents.get(column.references)
            if parent is None and table in typed and key in typed[table].columns:
                parent = typed[table][key]
            if parent is None:
                continue
            child = frame[column.name]
            broken: np.ndarray = child.notna().to_numpy(dtype=bool) & ~_isin(child, parent)
            if column.pattern is not None and broken.any():  # malformed: reported already
                broken &= child.str.fullmatch(column.pattern).fillna(False).to_numpy(dtype=bool)
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
        consequence = spec.when_absent or (
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
