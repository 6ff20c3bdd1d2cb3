"""``stratum validate``, ``generate`` and ``features``: source folders and feature tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from stratum_ml.features.spill import FeatureFile

from stratum_ml.cli.common import (
    EngineOption,
    PartitionsOption,
    SchedulerOption,
    check_engine,
    console,
    fail,
    guard_date,
    load,
    parse_date,
    say_absent,
)


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


def generate(
    out: Annotated[Path, typer.Option(help="Source folder to create.")],
    truth: Annotated[
        Path, typer.Option(help="Ground-truth file (kept outside the source folder).")
    ],
    addresses: Annotated[int, typer.Option(min=10, help="Number of addresses.")] = 60_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same municipality.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "parquet",
    raw_out: Annotated[
        Path | None,
        typer.Option(
            "--raw-out",
            help="Also write the municipality as raw extracts (made-up BSNs, family names, "
            "KvK numbers) for `stratum pseudonymise`; kept outside the source folder.",
        ),
    ] = None,
) -> None:
    """Generate a synthetic municipality with planted fraud mechanisms."""
    from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality

    if fmt not in ("csv", "parquet"):
        raise fail(f"--format must be csv or parquet, not {fmt!r}")
    cfg = GeneratorConfig(n_addresses=addresses, seed=seed)
    try:
        summary = generate_municipality(
            cfg, out_dir=out, truth_file=truth, fmt=fmt, progress=True, raw_dir=raw_out
        )
    except (ValueError, FileExistsError) as exc:
        raise fail(str(exc)) from None
    console.print(summary)


def features(
    sources: Annotated[Path, typer.Option(help="Validated source folder.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Reference date YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")],
    engine: EngineOption = "local",
    partitions: PartitionsOption = None,
    scheduler: SchedulerOption = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="With --engine partitioned: partitions computed at once, each in a worker "
            "process (1: in this process).",
        ),
    ] = 1,
) -> None:
    """Build the feature table, one row per address, as of a date.

    The date may not lie after the extract date of the sources. Every engine gives the
    same table. ``partitioned`` never holds the whole folder: it validates and splits
    the folder one table (or block of rows) at a time, then computes one partition of
    addresses at a time and writes it to the file as it is done, so its rows come
    partition by partition (read them by address_id, not by row).
    """
    check_engine(engine, scheduler)
    from stratum_ml.features.build import build_feature_table
    from stratum_ml.io import table_format, write_frame_atomic

    ref = parse_date(as_of, "--as-of")
    if workers > 1 and engine != "partitioned":
        raise fail("--workers needs --engine partitioned")
    if engine == "partitioned":
        try:
            table_format(out)  # refused before the folder is read
        except ValueError as exc:
            raise fail(str(exc)) from None
        # written a partition at a time, as the partitions are done
        written = _features_to_file(sources, ref, out, partitions, workers)
        say_absent(written.absent_features)
        rows, n_features = written.rows, len(written.columns)
    else:
        tables = load(sources)
        guard_date(ref, tables)
        table = build_feature_table(
            tables, ref, progress=True, engine=engine, partitions=partitions, scheduler=scheduler
        )
        say_absent(table.attrs.get("absent_features", {}))
        # a data file the feature tools read back: written as it is
        write_frame_atomic(table.reset_index(), out, spreadsheet_safe=False)
        rows, n_features = table.shape
    console.print(f"wrote {rows:,} addresses x {n_features} features to {out}")


def _features_to_file(
    sources: Path, ref: dt.date, out: Path, partitions: int | None, workers: int
) -> FeatureFile:
    """``features_to_file`` with the exits of ``load`` and ``guard_date``."""
    from stratum_ml.features.spill import features_to_file
    from stratum_ml.sources import (
        AsOfAfterExtractError,
        ExtractDateError,
        SourceValidationError,
        guard_as_of,
    )

    try:
        return features_to_file(
            sources,
            ref,
            out,
            n_partitions=partitions,
            workers=workers,
            guard=lambda e: guard_as_of(ref, e),
        )
    except (SourceValidationError, ExtractDateError) as exc:
        raise fail(str(exc), 1) from None
    except (AsOfAfterExtractError, FileNotFoundError, NotADirectoryError) as exc:
        raise fail(str(exc)) from None
