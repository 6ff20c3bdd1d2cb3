"""``stratum train``, ``evaluate`` and ``promote``: a model from training to champion.

Exit status of ``promote``: 0 promoted, 1 refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from stratum_ml.cli.common import (
    console,
    fail,
    guard_date,
    load,
    load_model,
    parse_date,
    say_absent,
)
from stratum_ml.cli.store import open_operational_store

if TYPE_CHECKING:
    from rich.table import Table

    from stratum_ml.evaluation.truth import TruthCheck
    from stratum_ml.training.outcome import TrainingOutcome
    from stratum_ml.training.report import EvaluationReport
    from stratum_ml.training.tracking import RegisteredVersion

out = Console()


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
    from stratum_ml.config import get_settings
    from stratum_ml.serving.outcomes import read_outcomes
    from stratum_ml.sources import load_audit_tables
    from stratum_ml.training.config import RunConfig
    from stratum_ml.training.dataset import with_recorded_visits
    from stratum_ml.training.tracking import log_training_run
    from stratum_ml.training.train import train_model

    settings = get_settings()
    try:
        run_config = RunConfig.from_yaml(config)
    except ValueError as exc:
        raise fail(str(exc)) from None
    tables = load(sources)
    audit = load_audit_tables(sources)
    if feedback:
        store = open_operational_store(settings)
        try:
            recorded = read_outcomes(store)
        finally:
            store.close()
        if len(recorded):
            tables, added = with_recorded_visits(tables, recorded)
            console.print(f"added {added} visit outcomes recorded through the service")
    with console.status("training") as status:
        try:
            outcome = train_model(
                tables, audit, run_config, say=lambda step: status.update(f"training: {step}")
            )
        except ValueError as exc:
            raise fail(str(exc), 1) from None
        status.update("recording the run in MLflow")
        registered = log_training_run(outcome, settings=settings, source_dir=sources)
    _print_training_summary(outcome, registered, settings.tracking_uri)


def _print_training_summary(o: TrainingOutcome, r: RegisteredVersion, uri: str) -> None:
    p = o.periods
    say_absent(p.get("absent_features", {}))
    out.print(
        f"[bold]trained on[/] {p['train_n']} visits {p['train_from']} .. {p['train_until']}; "
        f"tuned on {p['tune_n']} ({p['tune_from']} .. {p['tune_until']}); "
        f"evaluated on {p['holdout_n']} ({p['holdout_from']} .. {p['holdout_until']})"
    )
    out.print(
        _precision_table(
            o.report, "precision@k: honest (random-sample visits) beside naive (all visits)"
        )
    )
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


def evaluate(
    sources: Annotated[Path, typer.Option(help="Validated source folder.")],
    model: Annotated[str, typer.Option(help="Alias or version to evaluate.")] = "challenger",
    truth: Annotated[
        Path | None, typer.Option(help="Ground-truth file of a generated municipality.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Date to check the truth at (default: the run's population date); not after "
            "the extract date of the sources.",
        ),
    ] = None,
) -> None:
    """Show a version's honest metrics; with --truth, check them against the truth."""
    from stratum_ml.evaluation.truth import check_against_truth
    from stratum_ml.scoring.scorer import Scorer
    from stratum_ml.synthetic.truth import read_truth
    from stratum_ml.training.report import ReportMissing, read_logged_report

    risk_model, info = load_model(model)
    try:
        report = read_logged_report(info.run_id)
    except ReportMissing as exc:
        raise fail(f"{info.name} v{info.version}: {exc}", 1) from None
    out.print(
        f"[bold]{info.name} v{info.version}[/] ({', '.join(info.aliases) or 'no alias'}), "
        f"trained on {risk_model.metadata_.get('trained_on', '?')}"
    )
    _print_report(report)
    if truth is None:
        return
    try:
        truth_table = read_truth(truth)
    except (OSError, ValueError) as exc:
        raise fail(f"{truth}: cannot read truth file: {exc}") from None
    population_date = risk_model.metadata_.get("population_as_of")
    ref = (
        parse_date(as_of, "--as-of")
        if as_of
        else parse_date(str(population_date), "population_as_of")
    )
    tables = load(sources)
    guard_date(ref, tables, "--as-of" if as_of else "population_as_of")
    scorer = Scorer.from_sources(risk_model, tables, ref)
    check = check_against_truth(
        scorer.table["raw_score"], truth_table, ref, report.honest, features=scorer.features
    )
    _print_truth_check(check)


def _precision_table(report: EvaluationReport, title: str) -> Table:
    """precision@k per k: honest with its interval and region, naive, the two baselines."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("k", "honest", "95% CI", "region", "naive", "current practice", "random"):
        table.add_column(col)
    random = report.random_baseline.precision if report.random_baseline else float("nan")
    for at in sorted(report.precision, key=lambda a: a.k):
        est = at.honest
        cp = at.current_practice.estimate if at.current_practice else float("nan")
        table.add_row(
            str(at.k),
            f"{est.estimate:.3f}",
            f"[{est.ci_low:.3f}, {est.ci_high:.3f}]",
            f"top {est.region_k} ({est.n} random visits)",
            f"{at.naive.estimate:.3f}",
            f"{cp:.3f}",
            f"{random:.3f}",
        )
    return table


def _print_report(report: EvaluationReport) -> None:
    out.print(_precision_table(report, "holdout evaluation (logged with the run)"))
    if report.holdout is not None:
        metrics = report.holdout.all_visits
        for name, value in (
            ("roc_auc", metrics.roc_auc),
            ("pr_auc", metrics.pr_auc),
            ("brier", metrics.brier),
        ):
            out.print(f"holdout_{name}: {value:.3f}")
    out.print(f"fairness_passed: {float(report.fairness.passed):.3f}")


def _print_truth_check(check: TruthCheck) -> None:
    from rich.table import Table

    table = Table(
        title=f"true precision@k against the truth file, as of {check.as_of} "
        f"(prevalence {check.prevalence:.3%})"
    )
    for col in ("k", "model", "current practice", "random", "honest estimate (logged)"):
        table.add_column(col)
    for k, row in check.table.iterrows():
        est = row["honest_estimate"]
        table.add_row(
            str(k),
            f"{row['model']:.3f}",
            f"{row['current_practice']:.3f}",
            f"{row['random']:.3f}",
            "" if math.isnan(est) else f"{est:.3f}",
        )
    out.print(table)


def promote(
    version: Annotated[
        str | None, typer.Option(help="Version to promote; default: the current challenger.")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="Registered model; default: $STRATUM_MODEL_NAME.")
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(
            min=0.0, help="How far the challenger's honest precision may fall below the champion's."
        ),
    ] = 0.0,
    accept_fairness_risk: Annotated[
        str | None,
        typer.Option(
            help="Promote although the fairness gate failed, with your written reason "
            "(>= 30 characters); recorded on the version with your user name."
        ),
    ] = None,
) -> None:
    """Promote the challenger to champion if it is fair and not worse than the champion."""
    from stratum_ml.config import get_settings
    from stratum_ml.training.registry import promote as promote_version

    settings = get_settings()
    name = model_name or settings.model_name
    result = promote_version(
        name,
        version,
        settings=settings,
        tolerance=tolerance,
        accept_fairness_risk=accept_fairness_risk,
    )
    if result.promoted:
        out.print(f"[bold green]PROMOTED[/] {name} version {result.new_champion} is the champion.")
        if result.previous_champion is not None:
            out.print(
                f"The previous champion, version {result.previous_champion}, stays loadable as "
                f"models:/{name}@previous_champion."
            )
    else:
        subject = f"version {result.challenger}" if result.challenger else "promotion"
        out.print(
            f"[bold red]REFUSED[/] {name} {subject}: the champion is unchanged "
            f"({result.new_champion or 'none'})."
        )
    for reason in result.reasons:
        out.print(f"  - {reason}", highlight=False, soft_wrap=True)
    out.print(
        f"documentation pack recorded with the decision: sha256 {result.docs_pack_sha256}"
        if result.docs_pack_sha256
        else "no documentation pack recorded with the decision (write one with `stratum docs`)",
        highlight=False,
    )
    raise typer.Exit(0 if result.promoted else 1)
