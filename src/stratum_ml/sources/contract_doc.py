"""The data contract as a document: ``docs/data-contract.md``, written from :data:`CONTRACT`.

The contract's rules live once, as data, in :mod:`stratum_ml.sources.contract`;
this module renders them as Markdown so that the document a municipality reads
cannot drift from the validator that judges its extract. A test compares the
committed ``docs/data-contract.md`` with :func:`render_contract` and fails when
they differ; regenerate with::

    python -m stratum_ml.sources.contract_doc docs/data-contract.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from stratum_ml.io import write_text_atomic
from stratum_ml.sources.contract import (
    CONTRACT,
    EXTRACT_COLUMNS,
    EXTRACT_DECLARATION,
    ColumnSpec,
    TableSpec,
)

__all__ = ["column_rule", "extract_section", "render_contract", "table_section"]

_INTRO = """\
# Source data contract

<!-- Generated from src/stratum_ml/sources/contract.py by
     `python -m stratum_ml.sources.contract_doc docs/data-contract.md`; do not edit by hand. -->

What a municipality hands to stratum_ml. Every source is one table, as a CSV
(UTF-8, comma, header row, ISO dates `YYYY-MM-DD`, timestamps ISO 8601) or a
Parquet file, named `<table>.csv` or `<table>.parquet`, all in one folder (the
"source folder"). Column names are exactly as below. Extra columns are ignored
with a warning; a missing required column, a wrong type, a broken key or a
value outside its domain is rejected with a clear error that names the file,
the column, the offending row numbers (the first few) and the rule.
`stratum validate SOURCE_DIR` checks a folder against every rule on this page.

The tables mirror the Dutch registers they come from, so that a municipality
can map its extracts onto them with little work: BAG (buildings and dwellings),
BRP (population register), the drinking-water company, the grid operator, the
Handelsregister (KvK), the Kadaster, the municipality's own reports
("meldingen") and home visits ("huisbezoeken"), and, for the fairness audit
only, protected attributes.

Identifiers of persons are pseudonyms. A citizen service number (BSN) must
never enter: any column, whatever its name (an extra one too), with a value of
9 digits passing the BSN "elfproef" (11-test) is rejected, and the error names
the rows, never the value.
"""

_POINT_IN_TIME = """\
## Point in time

Every feature of an address is computed "as of" a reference date: only rows
whose own date is strictly before that date may contribute, and a stay or an
ownership counts only where it was in force then (an end date on or after the
reference date is treated as unknown). Training rows use the visit date as the
reference date; a scoring run uses the scoring date. The column that dates a
row of each table:
"""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def column_rule(table: TableSpec, column: ColumnSpec) -> str:
    """The rule of one column in words, as the contract table shows it.

    Parameters
    ----------
    table : TableSpec
        The table the column belongs to (for its cross-column rules).
    column : ColumnSpec
        The column.

    Returns
    -------
    str
        Semicolon-separated rules; empty when the column has none beyond its type.

    Examples
    --------
    >>> from stratum_ml.sources.contract import TABLES
    >>> t = TABLES["addresses"]
    >>> column_rule(t, t.column("house_number"))
    '>= 1'
    """
    rules: list[str] = []
    if column.description:
        rules.append(column.description)
    if column.pattern is not None:
        rules.append(f"`^{column.pattern}$`")
    if column.unique:
        rules.append("unique")
    if column.references is not None and not column.description:
        ref_table, ref_column = column.references
        rules.append(f"must exist in {ref_table}.{ref_column}")
    low, high = column.min_value, column.max_value
    if column.max_is_current_year:
        rules.append(f"{_number(low)}..current year" if low is not None else "<= current year")
    elif low is not None and high is not None:
        rules.append(f"{_number(low)}..{_number(high)}")
    elif low is not None:
        rules.append(f">= {_number(low)}")
    elif high is not None:
        rules.append(f"<= {_number(high)}")
    for order in table.date_orders:
        if order.later == column.name:
            rules.append(f"{'>' if order.strict else '>='} {order.earlier}")
    if column.domain is not None:
        rules.append(", ".join(column.domain))
    for cond in table.set_only_when:
        if cond.column == column.name:
            rules.append(f"set only when {cond.when_column} = {cond.when_value}")
    if column.identifier and not (column.pattern or column.references or column.description):
        rules.append("pseudonym or code, never a BSN")
    for when in table.patterns_when:
        if when.column == column.name:
            rules.append(f"`^{when.pattern}$` when {when.when_column} = {when.when_value}")
    for geometry in table.geometries:
        if geometry.column == column.name:
            rules.append(f"valid polygon within the Netherlands in {geometry.crs_column}")
    if column.nullable:
        rules.append("nullable")
    if column.optional:
        rules.append("optional column")
    return "; ".join(r for r in rules if r)


def table_section(table: TableSpec) -> str:
    """The Markdown section of one table: heading, key facts and the column table."""
    status = "required" if table.required else "optional"
    lines = [f"## {table.name} — {table.description} ({status})", ""]
    if table.primary_key:
        lines += [f"Key: {', '.join(table.primary_key)}.", ""]
    if table.audit_only:
        lines += [
            "These columns never become model features, directly or through a feature",
            "computed from them. They are read only by the fairness audit, which",
            "aggregates them per address as of the reference date.",
            "",
        ]
    lines += ["| column | type | rule |", "|---|---|---|"]
    for column in table.columns:
        rule = column_rule(table, column).replace("|", "\\|")  # a pipe would end the cell
        lines.append(f"| {column.name} | {column.kind} | {rule} |")
    lines += [*table.notes]
    return "\n".join(lines).rstrip() + "\n"


def extract_section() -> str:
    """The Markdown section on the extract date: the declaration file and the dated columns."""
    d = EXTRACT_DECLARATION
    lines = [
        "## Extract date",
        "",
        "A source folder is a snapshot taken on its *extract date*: the first day it does",
        "not cover. The folder may declare it in a file beside the tables,",
        f"`{d.file}`, a JSON object with the one key `{d.key}` (an ISO date):",
        "",
        "```json",
        d.example,
        "```",
        "",
        "Nothing in the folder may then be dated on or after that day; a declared date on",
        "or before a date the tables hold is rejected with the latest date found and its",
        "column. Without the file, the extract date is the day after the latest date the",
        "folder holds, over these columns:",
        "",
        *(
            f"- {c.qualified}" + (" (a year counts as its last day, 31 December)" if c.year else "")
            for c in EXTRACT_COLUMNS
        ),
        "",
        "Declare the date when the extract was made later than its last event (a quiet",
        "week before the export). No command accepts a reference date after the extract",
        "date: `stratum features`, `score`, `evaluate` and `serve` refuse it, naming the",
        "extract date and where it comes from, and `serve` without `--as-of` scores as of",
        "the extract date.",
    ]
    return "\n".join(lines) + "\n"


def render_contract() -> str:
    """The whole contract document as Markdown.

    Returns
    -------
    str
        The text of ``docs/data-contract.md``.
    """
    required = ", ".join(f"`{t.name}`" for t in CONTRACT if t.required)
    optional = ", ".join(f"`{t.name}`" for t in CONTRACT if not t.required)
    parts = [
        _INTRO,
        f"Required tables: {required}.",
        f"Optional tables: {optional}.",
        "Features of a missing optional table are absent (not zero-filled), and the run says",
        "which.",
        "",
    ]
    parts += [table_section(t) for t in CONTRACT]
    parts.append(extract_section())
    parts.append(_POINT_IN_TIME)
    parts += [f"- {t.name}: `{t.own_date}`" for t in CONTRACT if t.own_date is not None]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the document to the path given (or print it); exit status 0."""
    args = sys.argv[1:] if argv is None else argv
    text = render_contract()
    if args:
        write_text_atomic(Path(args[0]), text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover - command-line entry
    raise SystemExit(main())
