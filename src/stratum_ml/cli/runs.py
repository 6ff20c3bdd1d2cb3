"""``stratum run``, ``runs list|show`` and ``changes``: scoring runs that are remembered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stratum_ml.cli.common import (
    EngineOption,
    PartitionsOption,
    SchedulerOption,
    check_engine,
    console,
    fail,
    guard_date,
    load,
    load_model,
    parse_date,
)
from stratum_ml.cli.monitor import _thresholds as drift_thresholds
from stratum_ml.cli.store import open_operational_store

if TYPE_CHECKING:
    from stratum_ml.config import Settings
    from stratum_ml.runs import RunModel, RunSummary
    from stratum_ml.store import Store

runs_app = typer.Typer(help="Stored scoring runs: list them, show a run's work list.")


def _summary_lines(summary: RunSummary) -> list[str]:
    drift = summary.drift_note or ("DRIFTED" if summary.drifted else "not drifted")
    previous = summary.previous_run_id or "none (first run of this model)"
    changes = ", ".join(f"{n} {change}" for change, n in summary.changes.items())
    return [
        f"run {summary.run_id}: {summary.n_items:,} dwellings as of {summary.as_of} with "
        f"{summary.model_name} v{summary.model_version}; top {summary.top_k} explained",
        f"drift: {drift}",
        f"against the previous run {previous}: {changes}",
    ]


def _store() -> Store:
    from stratum_ml.config import get_settings

    return open_operational_store(get_settings())


def run(
    sources: Annotated[Path, typer.Option(help="Validated source folder.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Scoring date YYYY-MM-DD.")],
    top: Annotated[int, typer.Option(min=1, help="Work list size: explain the top K.")] = 100,
    model: Annotated[str, typer.Option(help="Alias or version to score with.")] = "champion",
    min_move: Annotated[
        int, typer.Option("--min-move", min=0, help="Places an address must move to count.")
    ] = 10,
    thresholds: Annotated[
        Path | None,
        typer.Option(help="YAML with DriftThresholds fields (default: the documented defaults)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
    capacity: Annotated[
        int | None,
        typer.Option(
            min=1, help="Visits the run's plan proposes: the top, plus an exploration share."
        ),
    ] = None,
    exploration: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of --capacity drawn at random (default: the run config's "
            "exploration_share, 0.10).",
        ),
    ] = None,
    challenger_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of --capacity drawn from the challenger's top picks that are not "
            "top picks of the champion (default: the run config's challenger_share, 0.05, "
            "when a challenger is shadow-scored; 0 without one).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Run config (YAML) for exploration_share and challenger_share."),
    ] = None,
    shadow: Annotated[
        bool,
        typer.Option(help="Also score every dwelling with the challenger (stored beside it)."),
    ] = True,
    engine: EngineOption = "local",
    partitions: PartitionsOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Score every dwelling as of a date with the champion and store it as a run.

    The run keeps every dwelling's rank and probability, the fallback ranking
    (reports in the past year), the reasons of the top K, drift against the
    model's training reference and the changes against the previous run. The same
    date, model version and sources return the stored run. The date may not lie
    after the extract date of the sources. The run's notifications are then
    delivered, with whatever else in the outbox is due.

    With --capacity N the run gets a visit plan (`stratum plan`): the top
    N*(1-F) of the list, plus N*F exploration picks drawn at random by rank band
    with known inclusion probabilities (F: --exploration or the run config's
    exploration_share). With a challenger shadow-scored on the run, a share of
    --capacity (--challenger-share, else the run config's challenger_share) is drawn
    from the challenger's top N that are not top picks, so that the challenger's
    precision@k is estimable from the same visits. A stored run keeps the plan it was
    first given.

    --engine partitioned|dask builds the features one partition of addresses at a
    time (here, or on a Dask cluster: --scheduler, else a local cluster); the run
    stored is the same as with the default in-memory engine.
    """
    from stratum_ml.config import get_settings
    from stratum_ml.notify import DeliveryConfig, deliver
    from stratum_ml.runs import RunModel, create_run
    from stratum_ml.scoring.fallback import FALLBACK_DESCRIPTION
    from stratum_ml.serving.audit import AuditLog, AuditLogError, default_audit_log
    from stratum_ml.serving.audit_anchor import run_checkpointer
    from stratum_ml.signing import SigningKeyError
    from stratum_ml.store.switch import current_pause

    check_engine(engine, scheduler)
    ref = parse_date(as_of, "--as-of")
    share, configured_challenger = (
        _plan_shares(exploration, challenger_share, config)
        if capacity is not None
        else (None, None)
    )
    tables = load(sources)
    guard_date(ref, tables)
    limits = drift_thresholds(thresholds)
    risk_model, info = load_model(model)
    settings = get_settings()
    shadow_model = _challenger(settings, info.version) if shadow else None
    store = open_operational_store(settings)
    try:
        with console.status(f"scoring run as of {ref}"):
            summary = create_run(
                tables,
                ref,
                RunModel(risk_model, info),
                store,
                settings=settings,
                audit_checkpoint=run_checkpointer(AuditLog(default_audit_log()), store),
                top_k=top,
                thresholds=limits,
                changes_min_move=min_move,
                shadow=shadow_model,
                engine=engine,
                partitions=partitions,
                scheduler=scheduler,
            )
        plan = None
        if capacity is not None:
            from stratum_ml.cli.plan import user_name
            from stratum_ml.runs.plan import create_plan

            assert share is not None and configured_challenger is not None
            plan = create_plan(
                store,
                summary.run_id,
                capacity,
                share,
                created_by=user_name(),
                challenger_share=_plan_challenger_share(
                    store, summary.run_id, configured_challenger, challenger_share is not None
                ),
            ).to_dict()
        paused = current_pause(store)
        delivered = deliver(store, DeliveryConfig.from_settings(settings))
    except ValueError as exc:
        raise fail(str(exc), 1) from None
    except (AuditLogError, SigningKeyError) as exc:
        raise fail(f"the run's audit checkpoint cannot be taken: {exc}", 1) from None
    finally:
        store.close()
    notice = (
        None
        if paused is None
        else f"{paused.sentence()}; the run's work list is {FALLBACK_DESCRIPTION}, "
        "not the model's, until `stratum resume`"
    )
    if as_json:
        payload = {
            **summary.to_dict(),
            "paused": paused is not None,
            "notice": notice,
            "notifications": delivered.sentence(),
            "plan": plan,
            "shadow_model": None if shadow_model is None else shadow_model.info.version,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    if notice is not None:
        console.print(f"[bold yellow]{notice}[/]")
    if not summary.stored_now:
        console.print(f"[yellow]note:[/] run {summary.run_id} was stored before; returned as is")
    for line in _summary_lines(summary):
        typer.echo(line)
    if plan is not None:
        challenger_picks = (
            f", {plan['n_challenger']} from the top picks of challenger {plan['challenger']}"
            if plan["n_challenger"]
            else ""
        )
        typer.echo(
            f"visit plan: {plan['capacity']} visits, {plan['n_top']} from the top and "
            f"{plan['n_exploration']} exploration picks{challenger_picks} (seed {plan['seed']}); "
            f"`stratum plan --run {summary.run_id} --out plan.csv` exports it"
        )
    if shadow_model is not None and summary.stored_now:
        typer.echo(
            f"shadow: challenger {shadow_model.info.name} v{shadow_model.info.version} "
            "ranked every dwelling beside it"
        )
    console.print(delivered.sentence())


def _plan_shares(
    exploration: float | None, challenger_share: float | None, config: Path | None
) -> tuple[float, float]:
    """--exploration and --challenger-share, else the run config's ``exploration_share`` and
    ``challenger_share`` (the config read once)."""
    if exploration is not None and challenger_share is not None:
        return exploration, challenger_share
    from stratum_ml.training.config import RunConfig

    try:
        run_config = RunConfig.from_yaml(config)
    except ValueError as exc:
        raise fail(str(exc)) from None
    return (
        run_config.exploration_share if exploration is None else exploration,
        run_config.challenger_share if challenger_share is None else challenger_share,
    )


def _plan_challenger_share(store: Store, run_id: str, share: float, asked: bool) -> float:
    """The challenger share of the run's plan: 0 when no challenger is shadow-scored on it.

    A share given on the command line for a run without a shadow is refused (the
    plan would silently lack what was asked); the run config's default is not. A run
    stored before with its plan keeps that plan's share unless one is given.
    """
    from stratum_ml.runs.plan import PlanNotFound, challenger_of, get_plan

    if not asked:
        try:
            return get_plan(store, run_id).challenger_share
        except PlanNotFound:
            pass
    if share == 0 or challenger_of(store, run_id) is not None:
        return share
    if asked:
        raise ValueError(
            f"--challenger-share {share:g}: no challenger is shadow-scored on run {run_id} "
            "(register one as `challenger`, and do not pass --no-shadow)"
        )
    return 0.0


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(min=1, help="At most this many, the newest.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Stored scoring runs, newest first."""
    from rich.console import Console
    from rich.table import Table

    from stratum_ml.runs import list_runs

    store = _store()
    try:
        runs = list_runs(store, limit=limit)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], indent=2))
        return
    if not runs:
        console.print("no scoring runs yet: `stratum run --sources DIR --as-of DATE` makes one")
        return
    table = Table("run id", "as of", "model", "dwellings", "top K", "drift", "entered", "stored")
    for r in runs:
        drift = r.drift_note or ("drifted" if r.drifted else "ok")
        table.add_row(
            r.run_id,
            r.as_of.isoformat(),
            f"{r.model_name} v{r.model_version}",
            f"{r.n_items:,}",
            str(r.top_k),
            drift,
            str(r.changes.get("entered", 0)),
            r.created_at.isoformat(timespec="minutes"),
        )
    Console(width=160).print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id (see `stratum runs list`).")],
    out: Annotated[
        Path | None, typer.Option(help="Write the work list to a file (.csv or .parquet).")
    ] = None,
    language: Annotated[str, typer.Option(help="Reasons in en or nl.")] = "en",
) -> None:
    """A run's work list: rank, address, probability, state against the previous run, reasons."""
    from rich.console import Console
    from rich.table import Table

    from stratum_ml.io import write_frame_atomic
    from stratum_ml.runs import RunNotFound, fallback_list, get_run, work_list
    from stratum_ml.scoring.fallback import FALLBACK_DESCRIPTION
    from stratum_ml.store.switch import current_pause

    if language not in ("en", "nl"):
        raise fail(f"--language must be en or nl, not {language!r}")
    if out is not None and out.suffix not in (".csv", ".parquet"):
        raise fail(f"--out {out}: write a .csv or .parquet file")
    store = _store()
    try:
        summary = get_run(store, run_id)
        paused = current_pause(store)
        frame = (
            fallback_list(store, run_id)
            if paused is not None
            else work_list(store, run_id, language="nl" if language == "nl" else "en")
        )
    except RunNotFound as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    for line in _summary_lines(summary):
        console.print(line)
    if paused is not None:
        console.print(
            f"[bold yellow]{paused.sentence()}[/]; this work list is {FALLBACK_DESCRIPTION}, "
            "not the model's (`stratum resume` ends the pause)."
        )
    if out is not None:
        write_frame_atomic(frame, out)
        console.print(f"wrote the work list of {len(frame)} addresses to {out}")
        return
    if paused is not None:
        fallback = Table("rank", "address", "district", "neighbourhood", "model rank")
        for item in frame.itertuples():
            fallback.add_row(
                str(item.rank),
                str(item.address_id),
                str(item.district),
                str(item.neighbourhood),
                str(item.model_rank),
            )
        Console(width=200).print(fallback)
        return
    table = Table("rank", "address", "probability", "state", "fallback", "reason")
    for row in frame.itertuples():
        state = str(row.state) if row.state != "rank change" else f"was {row.previous_rank}"
        table.add_row(
            str(row.rank),
            str(row.address_id),
            f"{row.probability:.3f}",
            state,
            str(row.fallback_rank),
            str(row.reason_1 or ""),
        )
    Console(width=200).print(table)


def changes(
    run_id: Annotated[str, typer.Option("--run", help="The run id (see `stratum runs list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """What changed on a run's work list against the previous run, per district."""
    from rich.console import Console
    from rich.table import Table

    from stratum_ml.runs import RunNotFound, changes_by_district, changes_of, get_run

    store = _store()
    try:
        summary = get_run(store, run_id)
        frame = changes_of(store, run_id)
    except RunNotFound as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    by_district = changes_by_district(frame)
    if as_json:
        rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
        payload = {
            "run_id": summary.run_id,
            "previous_run_id": summary.previous_run_id,
            "as_of": summary.as_of.isoformat(),
            "top_k": summary.top_k,
            "min_move": summary.changes_min_move,
            "counts": summary.changes,
            "by_district": by_district,
            "changes": rows,
        }
        typer.echo(json.dumps(payload, indent=2, default=int))
        return
    if summary.previous_run_id is None:
        console.print(f"run {run_id} is the first run of {summary.model_name}: no changes")
        return
    table = Table("district", "entered", "left", "moved up", "moved down")
    for district, counts in by_district.items():
        table.add_row(district, *(str(n) for n in counts.values()))
    console.print(
        f"run {run_id} against {summary.previous_run_id} (top {summary.top_k}, moves of more "
        f"than {summary.changes_min_move} places)"
    )
    Console(width=120).print(table)


def _challenger(settings: Settings, run_version: str) -> RunModel | None:
    """The ``challenger`` to shadow-score with, or None (no challenger, or it is the run's)."""
    from mlflow.exceptions import MlflowException

    from stratum_ml.model.registry import CHALLENGER, load_risk_model
    from stratum_ml.runs import RunModel

    try:
        model, info = load_risk_model(settings.model_name, CHALLENGER, settings)
    except MlflowException:
        return None
    return None if info.version == run_version else RunModel(model, info)
