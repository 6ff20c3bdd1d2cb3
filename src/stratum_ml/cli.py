"""The ``stratum`` command line: a thin typer app, each command calls one library function."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from stratum_ml.serving.cli_admin import audit_app, keys_app
from stratum_ml.training.cli_registry import promote_command

if TYPE_CHECKING:
    from stratum_ml.features.catalogue import Language
    from stratum_ml.sources.tables import SourceTables
    from stratum_ml.training.model import RiskModel
    from stratum_ml.training.outcome import TrainingOutcome
    from stratum_ml.training.registry import ModelVersionInfo
    from stratum_ml.training.tracking import RegisteredVersion

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
    _say_absent(table.attrs.get("absent_features", {}))
    write_frame_atomic(table.reset_index(), out)
    console.print(f"wrote {len(table):,} addresses x {table.shape[1]} features to {out}")


app.command("promote")(promote_command)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


def _say_absent(absent: dict[str, list[str]]) -> None:
    """Name the features left out because an optional source table is missing."""
    by_table: dict[str, list[str]] = {}
    for feature, tables in absent.items():
        for table in tables:
            by_table.setdefault(table, []).append(feature)
    for table, names in by_table.items():
        console.print(
            f"[yellow]note:[/] {table} is not in the source folder; {len(names)} features "
            f"are absent (not zero-filled): {', '.join(names)}"
        )


def _load_model(alias_or_version: str) -> tuple[RiskModel, ModelVersionInfo]:
    from stratum_ml.config import get_settings
    from stratum_ml.training.registry import load_risk_model

    settings = get_settings()
    try:
        return load_risk_model(settings.model_name, alias_or_version, settings)
    except Exception as exc:  # noqa: BLE001 - mlflow raises its own exception types
        raise _fail(
            f"no model {settings.model_name}@{alias_or_version} in {settings.tracking_uri}: {exc}"
        ) from None


def _load(sources: Path) -> SourceTables:
    from stratum_ml.sources import SourceValidationError, load_sources

    try:
        return load_sources(sources)
    except SourceValidationError as exc:
        raise _fail(str(exc), 1) from None
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def train(
    sources: Annotated[Path, typer.Option(help="Validated source folder.")],
    config: Annotated[
        Path | None, typer.Option(help="Run config (YAML); default settings otherwise.")
    ] = None,
    feedback: Annotated[
        bool, typer.Option(help="Add the visit outcomes recorded through the service.")
    ] = True,
) -> None:
    """Train, evaluate honestly, audit and register a model as `challenger`."""
    import dataclasses

    import pandas as pd

    from stratum_ml.config import get_settings
    from stratum_ml.serving.outcomes import OutcomeError, outcomes_path, read_outcomes
    from stratum_ml.sources import load_audit_tables
    from stratum_ml.training.config import RunConfig
    from stratum_ml.training.tracking import log_training_run
    from stratum_ml.training.train import train_model

    settings = get_settings()
    try:
        run_config = RunConfig.from_yaml(config)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    tables = _load(sources)
    audit = load_audit_tables(sources)
    if feedback:
        try:
            extra = read_outcomes(outcomes_path(settings.home))
        except OutcomeError as exc:
            raise _fail(str(exc), 1) from None
        if len(extra):
            known = set(tables.inspections["inspection_id"])
            extra = extra.loc[~extra["inspection_id"].isin(known)]
            merged = pd.concat([tables.inspections, extra], ignore_index=True)
            tables = dataclasses.replace(tables, inspections=merged)
            console.print(f"added {len(extra)} visit outcomes recorded through the service")
    with console.status("training") as status:
        try:
            outcome = train_model(
                tables, audit, run_config, say=lambda step: status.update(f"training: {step}")
            )
        except ValueError as exc:
            raise _fail(str(exc), 1) from None
        status.update("recording the run in MLflow")
        registered = log_training_run(outcome, settings=settings, source_dir=sources)
    _print_training_summary(outcome, registered, settings.tracking_uri)


def _print_training_summary(o: TrainingOutcome, r: RegisteredVersion, uri: str) -> None:
    from rich.table import Table

    p = o.periods
    _say_absent(p.get("absent_features", {}))
    out = Console()
    out.print(
        f"[bold]trained on[/] {p['train_n']} visits {p['train_from']} .. {p['train_until']}; "
        f"tuned on {p['tune_n']} ({p['tune_from']} .. {p['tune_until']}); "
        f"evaluated on {p['holdout_n']} ({p['holdout_from']} .. {p['holdout_until']})"
    )
    table = Table(title="precision@k: honest (random-sample visits) beside naive (all visits)")
    for col in ("k", "honest", "95% CI", "region", "naive", "current practice"):
        table.add_column(col)
    for k, est in o.honest.items():
        cp = o.metrics.get(f"baseline_current_practice_precision_at_{k}", float("nan"))
        table.add_row(
            str(k),
            f"{est.estimate:.3f}",
            f"[{est.ci_low:.3f}, {est.ci_high:.3f}]",
            f"top {est.region_k} ({est.n} random visits)",
            f"{o.naive[k].estimate:.3f}",
            f"{cp:.3f}",
        )
    out.print(table)
    verdict = o.fairness_verdict
    if verdict.passed:
        out.print("[bold green]fairness gate: passed[/]")
    else:
        out.print("[bold red]fairness gate: failed[/]")
        for reason in verdict.reasons:
            out.print(f"  - {reason}")
    out.print(
        f"registered {r.model_name} version {r.version} as [bold]challenger[/] "
        f"(run {r.run_id}) in {uri}"
    )


@app.command()
def score(
    sources: Annotated[Path, typer.Option(help="Validated source folder.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Scoring date YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="Priority list (.csv or .parquet).")],
    top: Annotated[int, typer.Option(min=1, help="Explain the top K dwellings.")] = 100,
    model: Annotated[str, typer.Option(help="Alias or version to score with.")] = "champion",
    language: Annotated[str, typer.Option(help="en or nl")] = "en",
) -> None:
    """Score every dwelling as of a date with the champion; explain the top K."""
    from stratum_ml.io import write_frame_atomic
    from stratum_ml.scoring.scorer import Scorer

    if language not in ("en", "nl"):
        raise _fail(f"--language must be en or nl, not {language!r}")
    lang: Language = "nl" if language == "nl" else "en"
    ref = _parse_date(as_of, "--as-of")
    risk_model, info = _load_model(model)
    tables = _load(sources)
    with console.status(f"scoring as of {ref}"):
        try:
            scorer = Scorer.from_sources(risk_model, tables, ref)
        except ValueError as exc:
            raise _fail(str(exc), 1) from None
        frame = scorer.to_frame(top, language=lang)
    frame.insert(1, "model_version", info.version)
    write_frame_atomic(frame, out)
    console.print(
        f"scored {len(frame):,} dwellings as of {ref} with {info.name} v{info.version}; "
        f"top {min(top, len(frame))} explained; wrote {out}"
    )


@app.command()
def evaluate(
    sources: Annotated[Path, typer.Option(help="Validated source folder.")],
    model: Annotated[str, typer.Option(help="Alias or version to evaluate.")] = "challenger",
    truth: Annotated[
        Path | None, typer.Option(help="Ground-truth file of a generated municipality.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Date to check the truth at (default: the run's population date)."
        ),
    ] = None,
) -> None:
    """Show a version's honest metrics; with --truth, check them against the truth."""
    import pandas as pd
    from rich.table import Table

    from stratum_ml.scoring.scorer import Scorer
    from stratum_ml.scoring.truth import true_precision

    risk_model, info = _load_model(model)
    import mlflow

    run = mlflow.get_run(info.run_id)
    metrics = run.data.metrics
    out = Console()
    out.print(
        f"[bold]{info.name} v{info.version}[/] ({', '.join(info.aliases) or 'no alias'}), "
        f"trained on {risk_model.metadata_.get('trained_on', '?')}"
    )
    table = Table(title="holdout evaluation (logged with the run)")
    for col in ("k", "honest", "95% CI", "naive", "current practice", "random"):
        table.add_column(col)
    ks = sorted(
        {
            int(k.split("_")[-1])
            for k in metrics
            if k.startswith("honest_precision_at_") and k.split("_")[-1].isdigit()
        }
    )
    for k in ks:
        table.add_row(
            str(k),
            f"{metrics[f'honest_precision_at_{k}']:.3f}",
            f"[{metrics[f'honest_precision_at_{k}_ci_low']:.3f}, "
            f"{metrics[f'honest_precision_at_{k}_ci_high']:.3f}]",
            f"{metrics.get(f'naive_precision_at_{k}', float('nan')):.3f}",
            f"{metrics.get(f'baseline_current_practice_precision_at_{k}', float('nan')):.3f}",
            f"{metrics.get(f'baseline_random_precision_at_{k}', float('nan')):.3f}",
        )
    out.print(table)
    for name in ("holdout_roc_auc", "holdout_pr_auc", "holdout_brier", "fairness_passed"):
        if name in metrics:
            out.print(f"{name}: {metrics[name]:.3f}")
    if truth is None:
        return
    try:
        truth_table = (
            pd.read_parquet(truth)
            if truth.suffix != ".csv"
            else pd.read_csv(truth, parse_dates=["start_date", "end_date"])
        )
    except (OSError, ValueError) as exc:
        raise _fail(f"{truth}: cannot read truth file: {exc}") from None
    population_date = risk_model.metadata_.get("population_as_of")
    ref = (
        _parse_date(as_of, "--as-of")
        if as_of
        else _parse_date(str(population_date), "population_as_of")
    )
    tables = _load(sources)
    scorer = Scorer.from_sources(risk_model, tables, ref)
    region_ks = sorted({int(metrics[f"honest_precision_at_{k}_region_k"]) for k in ks})
    result = true_precision(scorer, truth_table, sorted(set(ks) | set(region_ks)))
    check = Table(
        title=f"true precision@k against the truth file, as of {ref} "
        f"(prevalence {result.attrs['prevalence']:.3%})"
    )
    for col in ("k", "model", "current practice", "random", "honest estimate (logged)"):
        check.add_column(col)
    wide = result.pivot(index="k", columns="ranking", values="true_precision")
    honest_by_region = {
        int(metrics[f"honest_precision_at_{k}_region_k"]): metrics[f"honest_precision_at_{k}"]
        for k in ks
    }
    for k in wide.index:
        row = wide.loc[k]
        est = honest_by_region.get(int(k))
        check.add_row(
            str(k),
            f"{row['model']:.3f}",
            f"{row.get('current_practice', float('nan')):.3f}",
            f"{row['random']:.3f}",
            "" if est is None else f"{est:.3f}",
        )
    out.print(check)


@app.command()
def serve(
    sources: Annotated[Path, typer.Option(help="Validated source folder to score.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 3000,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Scoring date YYYY-MM-DD (default: today).")
    ] = None,
) -> None:
    """Serve the champion with BentoML on 127.0.0.1: scores, priority lists, dossiers."""
    from stratum_ml.serving.launch import LaunchError
    from stratum_ml.serving.launch import serve as launch

    ref = _parse_date(as_of, "--as-of") if as_of else None
    try:
        code = launch(sources, port=port, as_of=ref)
    except LaunchError as exc:
        raise _fail(str(exc), 1) from None
    raise typer.Exit(code)


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
