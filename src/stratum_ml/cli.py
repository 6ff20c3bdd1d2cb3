"""The ``stratum`` command line: a thin typer app, each command calls one library function."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from stratum_ml.serving.cli_admin import audit_app, keys_app

app = typer.Typer(
    name="stratum",
    help="Point-in-time risk scoring for municipal address and housing enforcement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)


class CliError(Exception):
    """An error the user can act on; printed without a traceback."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option}: {value!r} is not a date in the form YYYY-MM-DD") from None


@app.command()
def validate(
    source_dir: Annotated[
        Path, typer.Argument(help="Folder with the source tables (CSV/Parquet).")
    ],
) -> None:
    """Validate a source folder against the data contract and print a report."""
    from stratum_ml.sources.report import print_report
    from stratum_ml.sources.validate import validate_source_dir

    report = validate_source_dir(source_dir)
    print_report(report, Console())
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Source folder to create.")],
    truth: Annotated[
        Path, typer.Option(help="Ground-truth file (kept outside the source folder).")
    ],
    addresses: Annotated[int, typer.Option(min=10, help="Number of addresses.")] = 60_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same municipality.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "parquet",
) -> None:
    """Generate a synthetic municipality with planted fraud mechanisms."""
    from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality

    if fmt not in ("csv", "parquet"):
        raise _fail(f"--format must be csv or parquet, not {fmt!r}")
    cfg = GeneratorConfig(n_addresses=addresses, seed=seed)
    try:
        summary = generate_municipality(cfg, out_dir=out, truth_file=truth, fmt=fmt, progress=True)
    except (ValueError, FileExistsError) as exc:
        raise _fail(str(exc)) from None
    console.print(summary)


@app.command()
def features(
    sources: Annotated[Path, typer.Option(help="Validated source folder.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Reference date YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")],
) -> None:
    """Build the feature table, one row per address, as of a date."""
    from stratum_ml.features.build import build_feature_table
    from stratum_ml.io import write_frame_atomic
    from stratum_ml.sources import SourceValidationError, load_sources

    ref = _parse_date(as_of, "--as-of")
    try:
        tables = load_sources(sources)
    except SourceValidationError as exc:
        raise _fail(str(exc), 1) from None
    table = build_feature_table(tables, ref, progress=True)
    write_frame_atomic(table.reset_index(), out)
    console.print(f"wrote {len(table):,} addresses x {table.shape[1]} features to {out}")


app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
