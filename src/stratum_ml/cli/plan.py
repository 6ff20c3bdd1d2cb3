"""``stratum plan`` (export, ``--explain``, ``decline``) and ``stratum feedback import``.

Two exports of a run's visit plan, because whoever visits must not be able to
tell an exploration pick from a top pick:

* default (for visitors): ``run_id, visit_order, address_id, district,
  neighbourhood`` in a random order, declined picks left out;
* ``--analyst``: every pick by rank with ``rank, pick, inclusion_probability,
  stratum, band`` and whether it was declined.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stratum_ml.cli.common import console, fail
from stratum_ml.cli.store import open_operational_store

if TYPE_CHECKING:
    from stratum_ml.runs.plan import Explanation
    from stratum_ml.store import Store

plan_app = typer.Typer(
    help="A run's visit plan: export it (visitors' or analyst's), explain a share, decline a pick.",
    invoke_without_command=True,
)
feedback_app = typer.Typer(help="Visit outcomes: import a file of visits that answer a plan.")


def user_name() -> str:
    """Who runs the command (``cli:<user>``)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (e.g. a bare container)
        return "cli:unknown"


def _store() -> Store:
    from stratum_ml.config import get_settings

    return open_operational_store(get_settings())


@plan_app.callback()
def plan(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Option("--run", help="The run id.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the plan to a file (.csv or .parquet).")
    ] = None,
    analyst: Annotated[
        bool,
        typer.Option(
            "--analyst",
            help="The analyst's export: rank, pick (top|exploration), inclusion probability. "
            "Never hand it to those who visit.",
        ),
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Print what an exploration share buys.")
    ] = False,
    capacity: Annotated[
        int | None, typer.Option(min=1, help="--explain: visits per run (default: the run's).")
    ] = None,
    exploration: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="--explain: share (default: the run's, else 0.10)."),
    ] = None,
    population: Annotated[
        int | None,
        typer.Option(min=1, help="--explain: dwellings ranked (default: the run's)."),
    ] = None,
    challenger_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="--explain: share drawn from the challenger's top picks (default: the run's "
            "plan's, else 0).",
        ),
    ] = None,
    runs_per_year: Annotated[int, typer.Option(min=1, help="--explain: runs a year.")] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Export a run's visit plan, or (--explain) show what an exploration share buys."""
    if ctx.invoked_subcommand is not None:
        return
    from stratum_ml.runs.plan import (
        DEFAULT_EXPLORATION,
        PlanError,
        PlanNotFound,
        explain_share,
        get_plan,
        plan_export,
    )

    if out is not None and out.suffix not in (".csv", ".parquet"):
        raise fail(f"--out {out}: write a .csv or .parquet file")
    stored = None
    if run_id is not None:
        store = _store()
        try:
            stored = get_plan(store, run_id)
        except PlanNotFound as exc:
            if not explain:
                raise fail(str(exc)) from None
        finally:
            store.close()
    if explain:
        n = population or (_population(run_id) if stored else None)
        cap = capacity or (stored.capacity if stored else None)
        share = (
            exploration
            if exploration is not None
            else (stored.exploration_share if stored else DEFAULT_EXPLORATION)
        )
        if n is None or cap is None:
            raise fail("--explain needs --run RUN_ID, or --capacity and --population")
        c_share = (
            challenger_share
            if challenger_share is not None
            else (stored.challenger_share if stored else 0.0)
        )
        ranks = _challenger_ranks(run_id, n) if c_share and population is None else None
        try:
            explanation = explain_share(
                n,
                cap,
                share,
                runs_per_year=runs_per_year,
                challenger_share=c_share,
                challenger_ranks=ranks,
            )
        except PlanError as exc:
            raise fail(str(exc)) from None
        _print_explanation(explanation, cap, share, n, as_json, c_share)
        return
    if stored is None:
        raise fail("give --run RUN_ID (or --explain)")
    frame = plan_export(stored, "analyst" if analyst else "visitor")
    if out is not None:
        from stratum_ml.io import write_frame_atomic

        write_frame_atomic(frame, out)
        who = "analyst's" if analyst else "visitors'"
        console.print(f"wrote the {who} plan of run {stored.run_id} ({len(frame)} visits) to {out}")
        return
    if as_json:
        payload = {**stored.to_dict(), "items": json.loads(frame.to_json(orient="records"))}
        if not analyst:  # the summary tells top from exploration; visitors get the list only
            payload = {"run_id": stored.run_id, "items": payload["items"]}
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(*frame.columns)
    for row in frame.astype(str).itertuples(index=False):
        table.add_row(*row)
    Console(width=200).print(table)


def _population(run_id: str | None) -> int | None:
    if run_id is None:
        return None
    from stratum_ml.runs import get_run

    store = _store()
    try:
        return get_run(store, run_id).n_items
    finally:
        store.close()


def _challenger_ranks(run_id: str | None, population: int) -> Any:
    """The run's shadow ranks by its ranks (None: no run, no shadow, or another size)."""
    if run_id is None:
        return None
    from stratum_ml.runs.plan import challenger_ranks_of

    store = _store()
    try:
        ranks = challenger_ranks_of(store, run_id)
    finally:
        store.close()
    return ranks if ranks is not None and len(ranks) == population else None


def _print_explanation(
    e: Explanation,
    capacity: int,
    share: float,
    population: int,
    as_json: bool,
    challenger_share: float = 0.0,
) -> None:
    if as_json:
        payload = {
            "capacity": capacity,
            "exploration_share": share,
            "challenger_share": challenger_share,
            "population": population,
            "runs_per_year": e.runs_per_year,
            "bands": json.loads(e.bands.to_json(orient="records")),
            "precision": json.loads(e.precision.to_json(orient="records")),
            "challenger_precision": json.loads(e.challenger.to_json(orient="records")),
            "challenger_scenario": e.challenger_scenario or None,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console.print(
        f"capacity {capacity}, exploration share {share:g}, challenger share "
        f"{challenger_share:g}, {population:,} dwellings, {e.runs_per_year} runs a year"
    )
    bands = Table("ranks", "kind", "dwellings", "visits per run", "per year", "inclusion prob.")
    for b in e.bands.itertuples():
        bands.add_row(
            str(b.band),
            str(b.kind),
            f"{b.size:,}",
            str(b.per_run),
            str(b.per_year),
            f"{b.inclusion_probability:.4f}",
        )
    Console(width=120).print(bands)
    precision = Table("k", "exploration visits per year in the top k", "± per run", "± per year")
    for p in e.precision.itertuples():
        precision.add_row(
            str(p.k),
            f"{p.visits_per_year:.0f}",
            f"{p.half_width_run:.3f}",
            f"{p.half_width_year:.3f}",
        )
    Console(width=120).print(precision)
    console.print(
        "± is the worst-case 95% half-width on precision@k (precision 0.5 in every band); the "
        "top picks are counted, not estimated (± 0)."
    )
    if len(e.challenger):
        challenger = Table("k", "challenger picks per year in its top k", "± per run", "± per year")
        for p in e.challenger.itertuples():
            challenger.add_row(
                str(p.k),
                f"{p.visits_per_year:.0f}",
                f"{p.half_width_run:.3f}",
                f"{p.half_width_year:.3f}",
            )
        Console(width=120).print(challenger)
        console.print(
            f"the challenger's precision@k, with {e.challenger_scenario}: its top picks that "
            "are not the champion's top picks form the challenger stratum, drawn at random "
            "with a known inclusion probability (the rest of its top k is counted among the "
            "top picks)."
        )


@plan_app.command("decline")
def decline(
    run_id: Annotated[str, typer.Option("--run", help="The run id.")],
    address: Annotated[str, typer.Option(help="The address id of the pick.")],
    reason: Annotated[
        str,
        typer.Option(help="no_access | safety | open_case | not_a_dwelling | other"),
    ],
    note: Annotated[
        str | None,
        typer.Option(help="Why, in words (required for 'other'); no person data."),
    ] = None,
) -> None:
    """Decline a pick of a run's plan, with a reason; it counts as non-response."""
    from stratum_ml.runs.plan import PlanError, PlanNotFound, decline_pick

    store = _store()
    try:
        decline_pick(store, run_id, address, reason, note, declined_by=user_name())
    except (PlanError, PlanNotFound) as exc:
        raise fail(str(exc), 1) from None
    finally:
        store.close()
    console.print(
        f"declined {address} in the plan of run {run_id} ({reason}); it counts as non-response"
    )


@feedback_app.command("import")
def feedback_import(
    file: Annotated[Path, typer.Argument(help="CSV: the contract's inspection columns + run_id.")],
    sources: Annotated[
        Path | None,
        typer.Option(help="Source folder whose address register rows without run_id must match."),
    ] = None,
) -> None:
    """Store visit outcomes from a file, all or none; `run_id` names the plan a visit answers.

    The columns are the contract's `inspections` (inspection_id may be empty) plus
    `run_id`. A row with run_id must be a pick of that run's plan; a row without is
    stored but never counts as a design visit. `reason: random_sample` is refused.
    """
    import pandas as pd

    from stratum_ml.cli.common import load
    from stratum_ml.serving.outcomes import OutcomeError, OutcomeStore

    try:
        rows = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise fail(f"{file}: cannot read the CSV: {exc}") from None
    rows = rows.replace("", None)
    store = _store()
    try:
        register = set(_run_addresses(store, rows))
        if sources is not None:
            register |= set(load(sources).addresses["address_id"].astype(str))
        outcomes = OutcomeStore(store, register)
        stored = outcomes.record_many(rows, recorded_by=user_name(), source=str(file))
    except OutcomeError as exc:
        raise fail(str(exc), 1) from None
    finally:
        store.close()
    with_run = sum(1 for r in stored if r.run_id is not None)
    console.print(
        f"stored {len(stored)} visit outcomes from {file} ({with_run} answer a visit plan)"
    )


def _run_addresses(store: Store, rows: object) -> list[str]:
    """The scored addresses of the runs the rows name (the register for plan visits)."""
    import pandas as pd
    from sqlalchemy import select

    from stratum_ml.store.tables import RunItemRow

    assert isinstance(rows, pd.DataFrame)
    if "run_id" not in rows.columns:
        return []
    run_ids = sorted({str(r) for r in rows["run_id"].dropna()})
    if not run_ids:
        return []
    with store.transaction() as session:
        return list(
            session.scalars(select(RunItemRow.address_id).where(RunItemRow.run_id.in_(run_ids)))
        )
