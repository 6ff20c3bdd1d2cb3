"""``stratum train``, ``evaluate``, ``promote`` and ``compare``: a model from training to champion.

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
    import pandas as pd
    from rich.table import Table

    from stratum_ml.evaluation.design import DesignEstimate
    from stratum_ml.evaluation.truth import TruthCheck
    from stratum_ml.model.risk_model import RiskModel
    from stratum_ml.store import Store
    from stratum_ml.training.compare import DesignComparison, VersionComparison
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
    from stratum_ml.cli.common import recover_after_crash
    from stratum_ml.config import get_settings
    from stratum_ml.runs.estimates import latest_plan_visits
    from stratum_ml.serving.outcomes import read_outcomes
    from stratum_ml.sources import load_audit_tables
    from stratum_ml.sources.extract import extract_date
    from stratum_ml.training.config import RunConfig
    from stratum_ml.training.dataset import with_recorded_visits
    from stratum_ml.training.tracking import log_training_run
    from stratum_ml.training.train import train_model

    settings = get_settings()
    recover_after_crash(settings)
    try:
        run_config = RunConfig.from_yaml(config)
    except ValueError as exc:
        raise fail(str(exc)) from None
    tables = load(sources)
    audit = load_audit_tables(sources)
    plan_visits = None
    inclusion = None
    if feedback:
        from stratum_ml.runs.plan import plan_inclusion_probabilities

        store = open_operational_store(settings)
        try:
            recorded = read_outcomes(store)
            inclusion = plan_inclusion_probabilities(store)
            if run_config.frontier_grid_size:  # the frontier is estimated from a plan's visits
                plan_visits = latest_plan_visits(
                    store,
                    model_name=run_config.model_name or settings.model_name,
                    until=extract_date(tables).date,
                )
        finally:
            store.close()
        if len(recorded):
            tables, added = with_recorded_visits(tables, recorded)
            console.print(f"added {added} visit outcomes recorded through the service")
        if plan_visits is not None:
            console.print(f"fairness frontier estimated from the {plan_visits.describe()}")
    with console.status("training") as status:
        try:
            outcome = train_model(
                tables,
                audit,
                run_config,
                say=lambda step: status.update(f"training: {step}"),
                inclusion=inclusion,
                plan_visits=plan_visits,
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
    sources: Annotated[
        Path | None,
        typer.Option(
            help="Validated source folder (required without --run; with --run: for the "
            "protected groups of the false-positive-rate ratios)."
        ),
    ] = None,
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
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Design-based estimates from this run's visit plan, for every model version "
            "scored on its date.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="--run: print JSON.")] = False,
) -> None:
    """Show a version's honest metrics; with --truth, check them against the truth.

    With --run RUN_ID: Horvitz-Thompson estimates from the run's visit plan
    (precision@k and recall@k of every model version scored on the run's date,
    prevalence, and with --sources the false-positive-rate ratio of each
    protected group), or "not estimable" with worst/best-case bounds.
    """
    if run_id is not None:
        _evaluate_run(run_id, sources, as_json)
        return
    if sources is None:
        raise fail("give --sources DIR (or --run RUN_ID for a run's design-based estimates)")
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
    measured = _measured_model(info.version)
    scorer = Scorer.from_sources(measured, tables, ref)
    check = check_against_truth(
        scorer.table["raw_score"], truth_table, ref, report.honest, features=scorer.features
    )
    _print_truth_check(check)


def _evaluate_run(run_id: str, sources: Path | None, as_json: bool) -> None:
    """``evaluate --run``: the design-based estimates of a run's date."""
    import json

    from stratum_ml.runs import RunNotFound, get_run
    from stratum_ml.runs.estimates import evaluate_run
    from stratum_ml.training.config import RunConfig

    ks = RunConfig().ks
    settings_store = _open_store()
    try:
        groups = None
        if sources is not None:
            groups = _run_groups(settings_store, run_id, sources)
        try:
            result = evaluate_run(settings_store, run_id, ks=ks, groups=groups)
        except RunNotFound as exc:
            raise fail(str(exc)) from None
        summary = get_run(settings_store, run_id)
    except ValueError as exc:
        raise fail(str(exc), 1) from None
    finally:
        settings_store.close()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    from rich.table import Table

    plan = result.plan
    out.print(
        f"[bold]run {run_id}[/] as of {result.as_of} ({summary.model_name} "
        f"v{summary.model_version}): "
        + (
            f"plan of {plan['capacity']} visits ({plan['n_top']} top, {plan['n_exploration']} "
            f"exploration, {plan['n_challenger']} challenger), {result.n_visits} with an "
            f"outcome, {result.n_nonresponse} without"
            if plan
            else "no visit plan"
        )
    )
    for note in result.notes:
        out.print(f"[yellow]{note}[/]")
    for title, rows in (("precision@k", result.precision), ("recall@k", result.recall)):
        table = Table(title=f"{title}: design-based (Horvitz-Thompson) estimates")
        for col in ("model", "k", "estimate", "95% interval / bounds", "method", "visits", "naive"):
            table.add_column(col)
        for r in rows:
            table.add_row(*_estimate_cells(r, str(r["model_version"]), str(r["k"])))
        out.print(table)
    p = result.prevalence.to_dict()
    out.print(f"prevalence: {_estimate_cells(p, '', '')[2]} {_estimate_cells(p, '', '')[3]}")
    if result.fpr_ratios:
        table = Table(title="false-positive-rate ratio (group True / group False)")
        for col in ("model", "k", "attribute", "ratio", "95% interval / bounds", "method"):
            table.add_column(col)
        for r in result.fpr_ratios:
            cells = _estimate_cells(r, str(r["model_version"]), str(r["k"]))
            table.add_row(cells[0], cells[1], str(r["attribute"]), cells[2], cells[3], cells[4])
        out.print(table)
    elif sources is None:
        out.print("group false-positive-rate ratios: give --sources to read the groups")


def _estimate_cells(r: dict[str, object], model: str, k: str) -> list[str]:
    def num(value: object) -> str:
        return "" if value is None else f"{float(str(value)):.3f}"

    estimable = r["method"] != "not_estimable"
    return [
        model,
        k,
        num(r["estimate"]) if estimable else "not estimable",
        f"[{num(r['low'])}, {num(r['high'])}]" + ("" if estimable else " worst/best case"),
        str(r["method"]),
        str(r["n_visits"]),
        "" if r.get("naive") is None else f"{num(r['naive'])} (biased)",
    ]


def _open_store() -> Store:
    from stratum_ml.config import get_settings

    return open_operational_store(get_settings())


def _run_groups(store: Store, run_id: str, sources: Path) -> pd.DataFrame | None:
    """The protected groups of every address of the run, as of its date."""
    import pandas as pd  # noqa: F811 - at run time

    from stratum_ml.evaluation.sensitive import RESIDENT_GROUPS, address_groups
    from stratum_ml.runs import get_run
    from stratum_ml.sources import load_audit_tables

    summary = get_run(store, run_id)
    tables = load(sources)
    audit = load_audit_tables(sources)
    if audit is None:
        return None
    ids = tables.addresses["address_id"].astype(str)
    queries = pd.DataFrame({"address_id": ids.to_numpy(), "ref_date": pd.Timestamp(summary.as_of)})
    groups = address_groups(tables, audit, queries)
    groups.index = pd.Index(ids.to_numpy())
    return groups[[c for c in RESIDENT_GROUPS if c in groups.columns]]


def _measured_model(version: str) -> RiskModel:
    """The model the logged estimates measured: the split model when a final fit is registered.

    The truth check sets the logged honest estimate beside the true precision of the
    same model; a registered refit on every visit is a different (later) model.
    """
    from stratum_ml.config import get_settings
    from stratum_ml.model.store import client_for
    from stratum_ml.training.compare import evaluated_model

    settings = get_settings()
    model, which = evaluated_model(client_for(settings), settings.model_name, version, settings)
    if which.model != "registered model":
        out.print(
            "the truth check is of the evaluated (split) model, which the logged estimates "
            "measured; the registered model is its refit on every labelled visit"
        )
    return model


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
        if est.estimable:
            honest, interval = f"{est.estimate:.3f}", f"[{est.ci_low:.3f}, {est.ci_high:.3f}]"
            region = f"top {est.region_k} ({est.n} random visits)"
        else:  # never the widened region's estimate on the row of this k
            honest = "not estimable"
            interval = f"[{est.bound_low:.3f}, {est.bound_high:.3f}] worst/best case"
            region = f"top {at.k} ({max(est.n_in_top_k, 0)} random visits: too few)"
        table.add_row(
            str(at.k),
            honest,
            interval,
            region,
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
    frontier_point: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Promote point N of the fairness frontier of the version's training run "
            "(the `point` column of tables/fairness_frontier.csv) instead of its model; "
            "it is registered as a version of its own. Needs --reason.",
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(
            help="Why this frontier point (>= 30 characters); recorded in the signed "
            "decision with the point's estimated trade-off and your user name."
        ),
    ] = None,
) -> None:
    """Promote the challenger to champion if it is fair and not worse than the champion."""
    from stratum_ml.config import get_settings
    from stratum_ml.training.registry import promote as promote_version

    settings = get_settings()
    name = model_name or settings.model_name
    store = _open_store()  # a visit plan with visits makes the comparison design-based
    try:
        result = promote_version(
            name,
            version,
            settings=settings,
            tolerance=tolerance,
            accept_fairness_risk=accept_fairness_risk,
            frontier_point=frontier_point,
            frontier_reason=reason,
            store=store,
        )
    finally:
        store.close()
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


def compare(
    first: Annotated[str, typer.Argument(help="Version or alias, e.g. champion.")],
    second: Annotated[
        str, typer.Argument(help="Version or alias whose holdout visits are used, e.g. challenger.")
    ],
    model_name: Annotated[
        str | None, typer.Option(help="Registered model; default: $STRATUM_MODEL_NAME.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Two versions side by side on the same visits, with the paired difference (SECOND - FIRST).

    Both are scored on SECOND's holdout: its random-sample visits, ranked in its
    logged population. Promotion decides on the same comparison at the headline k.
    """
    from mlflow.exceptions import MlflowException

    from stratum_ml.config import get_settings
    from stratum_ml.model.store import client_for, configure_mlflow
    from stratum_ml.training.compare import paired_comparison
    from stratum_ml.training.report import ReportMissing
    from stratum_ml.training.tracking import json_text

    settings = get_settings()
    configure_mlflow(settings)
    name = model_name or settings.model_name
    client = client_for(settings)
    store = _open_store()
    try:
        result = paired_comparison(client, name, second, first, settings, store=store)
    except (MlflowException, ReportMissing, ValueError) as exc:
        raise fail(f"{name}: cannot compare {first} and {second}: {exc}", 1) from None
    finally:
        store.close()
    if as_json:
        payload = {"model_name": name, "first": first, "second": second, **result.to_dict()}
        typer.echo(json_text(payload))
        return
    out.print(f"method: {result.method}", highlight=False, soft_wrap=True)
    if result.design is not None:
        out.print(_design_table(result.design, first, second))
    out.print(_comparison_table(result, first, second))
    if result.design is not None and result.design.estimable:
        out.print(f"decides promotion: {result.design.describe()}", highlight=False, soft_wrap=True)
    else:
        d = result.comparison.decision
        out.print(f"decides promotion: {d.describe()}", highlight=False, soft_wrap=True)


def _design_table(design: DesignComparison, first: str, second: str) -> Table:
    from rich.table import Table

    table = Table(
        title=f"precision@k on the {design.n_visits} visits of the plan of run "
        f"{design.plan_run_id} ({design.as_of}), design-based (Horvitz-Thompson)"
    )
    for col in ("k", second, first, f"difference {second} - {first}"):
        table.add_column(col)

    def one(e: DesignEstimate) -> str:
        if e.method == "not_estimable":  # evaluation.design.NOT_ESTIMABLE
            return f"not estimable [{e.low:.3f}, {e.high:.3f}]"
        return f"{e.estimate:+.3f} [{e.low:+.3f}, {e.high:+.3f}]"

    for k, a, b, d in design.rows:
        table.add_row(str(k), one(a), one(b), one(d))
    return table


def _comparison_table(result: VersionComparison, first: str, second: str) -> Table:
    from rich.table import Table

    c = result.comparison
    a = f"{second} (v{result.challenger.version})"
    b = f"{first} (v{result.champion.version})"
    table = Table(
        title=f"precision@k on the same {c.n_visits} random-sample visits (holdout of "
        f"v{result.challenger.version} from {result.visits_from}; population {c.population})"
    )
    for col in ("k", a, b, f"difference {second} - {first}", "95% paired interval"):
        table.add_column(col)

    def one(est: float, low: float, high: float, n: int) -> str:
        return f"{est:.3f} [{low:.3f}, {high:.3f}] (n={n})" if n else f"- (n={n})"

    for row in c.rows:
        if row.estimable:
            diff, interval = f"{row.difference:+.3f}", f"[{row.low:+.3f}, {row.high:+.3f}]"
        else:
            diff, interval = "not estimable", "too few random visits in a top"
        table.add_row(
            str(row.k),
            one(row.challenger, row.challenger_low, row.challenger_high, row.n_challenger),
            one(row.champion, row.champion_low, row.champion_high, row.n_champion),
            diff,
            interval,
        )
    return table
