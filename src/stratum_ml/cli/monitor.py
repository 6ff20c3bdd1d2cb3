"""``stratum drift``: has the population moved away from what the model learnt?

Exit status, so that a scheduler can act on it: 0 not drifted, 1 drifted,
2 could not compare (bad option, no such model, no reference, unreadable sources).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from stratum_ml.cli.common import console, fail, guard_date, load_model, parse_date

if TYPE_CHECKING:
    from rich.table import Table

    from stratum_ml.monitoring.drift import DriftResult, DriftThresholds
    from stratum_ml.sources.tables import SourceTables

#: results go to stdout
out = Console()


def _thresholds(path: Path | None) -> DriftThresholds:
    import yaml
    from pydantic import ValidationError

    from stratum_ml.monitoring.drift import DriftThresholds

    if path is None:
        return DriftThresholds()
    try:
        return DriftThresholds.model_validate(yaml.safe_load(path.read_text("utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise fail(f"--thresholds {path}: {exc}") from None


def _tables(sources: Path) -> SourceTables:
    from stratum_ml.sources import SourceValidationError, load_sources

    try:
        return load_sources(sources)
    except (SourceValidationError, FileNotFoundError, NotADirectoryError) as exc:
        raise fail(str(exc)) from None


def _table(result: DriftResult) -> Table:
    from rich.table import Table

    colour = {"ok": "green", "warn": "yellow", "alarm": "red"}
    table = Table(title=f"drift against the training population as of {result.reference_as_of}")
    for column in ("feature", "PSI", "missing then", "missing now", "outside range", "status"):
        table.add_column(column, justify="left" if column == "feature" else "right")
    for f in result.features:
        status = f"[{colour[f.status]}]{f.status}[/]" + (" (accepted)" if f.accepted else "")
        table.add_row(
            f.feature,
            "-" if f.psi is None else f"{f.psi:.3f}",
            f"{100 * f.missing_rate_reference:.1f}%",
            f"{100 * f.missing_rate_current:.1f}%",
            f"{100 * f.out_of_range_share:.1f}%",
            status,
        )
    return table


def drift(
    sources: Annotated[Path, typer.Option(help="Validated source folder.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Date of the population YYYY-MM-DD.")],
    model: Annotated[str, typer.Option(help="Alias or version to compare with.")] = "champion",
    thresholds: Annotated[
        Path | None,
        typer.Option(help="YAML with DriftThresholds fields (default: the documented defaults)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compare the population as of a date with the model version's training reference.

    Exit 0 when not drifted, 1 when drifted, 2 when the comparison could not be made.
    """
    from stratum_ml.model.reference import ReferenceMissing, load_reference
    from stratum_ml.monitoring.drift import drift_of
    from stratum_ml.scoring.scorer import Scorer

    tables = _tables(sources)
    ref = guard_date(parse_date(as_of, "--as-of"), tables)
    limits = _thresholds(thresholds)
    risk_model, info = load_model(model)
    try:
        reference = load_reference(info.run_id)
    except ReferenceMissing as exc:
        raise fail(f"{info.name} v{info.version}: {exc}") from None
    with console.status(f"building the population as of {ref}"):
        try:
            result = drift_of(Scorer.from_sources(risk_model, tables, ref), reference, limits)
        except ValueError as exc:
            raise fail(str(exc)) from None
    if as_json:
        payload = {"model_name": info.name, "model_version": info.version}
        typer.echo(json.dumps({**payload, **json.loads(result.to_json())}, indent=2))
    else:
        out.print(_table(result))
        s = result.score
        out.print(
            f"score: KS {s.ks_statistic:.3f} (p = {s.ks_pvalue:.2g}); median log-odds "
            f"{s.median_reference:.2f} at training, {s.median_current:.2f} now"
        )
        out.print(
            f"{100 * result.out_of_range_share:.1f}% of {result.n_current:,} addresses have a "
            "feature outside its training range"
        )
        for warning in result.warnings:
            out.print(f"[yellow]warning:[/] {warning}")
        verdict = "[bold red]DRIFTED[/]" if result.drifted else "[bold green]not drifted[/]"
        out.print(f"{info.name} v{info.version} as of {ref}: {verdict}")
        for reason in result.reasons:
            out.print(f"  - {reason}")
    raise typer.Exit(1 if result.drifted else 0)
