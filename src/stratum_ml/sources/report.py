"""Print a :class:`~stratum_ml.sources.validate.ValidationReport` for people."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stratum_ml.sources.contract import CONTRACT
from stratum_ml.sources.validate import Finding, ValidationReport

_STYLES = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def print_report(report: ValidationReport, console: Console) -> None:
    """Print the findings grouped by table, then a one-line verdict.

    The folder's extract date comes first (when known), then its own remarks
    (such as unknown files); each table that was read or has findings gets a
    heading (file, row count, start of its sha256) and a table of its findings.

    Parameters
    ----------
    report : ValidationReport
        What :func:`~stratum_ml.sources.validate_source_dir` or
        :func:`~stratum_ml.sources.validate_tables` returned.
    console : rich.console.Console
        Where to print.
    """
    source = str(report.source_dir) if report.source_dir is not None else "in-memory tables"
    console.print(Text.assemble(("Source validation: ", "bold"), source))
    if report.extract is not None:
        console.print(Text.assemble(("extract date: ", "bold"), str(report.extract)))
    folder = [f for f in report.findings if f.table is None]
    if folder:
        console.print(Text("folder", style="bold"))
        console.print(_findings_table(folder))
    for spec in CONTRACT:
        findings = [f for f in report.findings if f.table == spec.name]
        if spec.name not in report.tables and not findings:
            continue
        console.print(_heading(report, spec.name))
        if findings:
            console.print(_findings_table(findings))
        else:
            console.print(Text("  no findings", style="green"))
    console.print(Text(report.verdict, style="bold green" if report.ok else "bold red"))


def _heading(report: ValidationReport, table: str) -> Text:
    heading = Text(table, style="bold")
    details = []
    if table in report.files:
        details.append(report.files[table])
    if table in report.tables:
        details.append(f"{report.tables[table]:,} rows")
    fingerprint = report.fingerprints.get(report.files.get(table, ""))
    if fingerprint is not None:
        details.append(f"sha256 {fingerprint[:12]}")
    if details:
        heading.append("  " + " · ".join(details), style="dim")
    return heading


def _findings_table(findings: list[Finding]) -> Table:
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, expand=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("column", no_wrap=True)
    table.add_column("rule")
    table.add_column("finding", ratio=1)
    for f in findings:
        table.add_row(
            Text(f.severity, style=_STYLES[f.severity]),
            Text(f.column or "-"),
            Text(f.rule),
            Text(f.message),
        )
    return table
