"""Create a scoring run: score, explain the top K, rank by current practice, drift, changes.

:func:`create_run` is a sequence of small named steps; each is timed, and the
run is stored in ONE transaction (a crash stores nothing of it) after its
MLflow run has started, so that the stored run names its MLflow run. The run
keeps the seconds of every step but the storing itself (which writes that
row); the MLflow run has them all (``timing_<step>_s``):

1. guard the date (:func:`stratum_ml.sources.extract.guard_as_of`) and derive the
   run id; a run already stored under that id is returned as it is, nothing is
   computed or stored again;
2. score every dwelling (:meth:`Scorer.from_sources`), with its likely violation
   type and share when the model has a violation type model (stored per item);
3. the reasons of the top K, in English and Dutch;
4. the fallback ranking: current practice, the number of reports in the past
   year (:data:`~stratum_ml.features.population.CURRENT_PRACTICE_FEATURE`), the
   same ranking a paused service answers with (ties by address id);
5. drift against the model version's training reference (a version without one
   stores the note "no reference" -- not an error);
6. in the store's write transaction: the previous run of the same model name,
   the changes against it, and every row;
7. the MLflow run ``scoring`` gets params, metrics and the drift result.

With a ``shadow`` model (``stratum run`` passes the ``challenger``), every dwelling
is also scored by it and its rank stored in ``run_shadow_items``
(:func:`shadow_rows`): the challenger is shadow-scored on every run, so that a
visit plan can include its top picks and the two lists can be compared on the
visits that follow. The shadow never changes the run's list, id or reasons.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratum_ml.config import Settings
from stratum_ml.evaluation.explain import Reason, top_reasons
from stratum_ml.features.partitioned import ENGINES
from stratum_ml.model.reference import DriftReference, ReferenceMissing, load_reference
from stratum_ml.model.registry import ModelVersionInfo
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.monitoring.drift import DriftResult, DriftThresholds, drift_of
from stratum_ml.notify.messages import enqueue_run_messages
from stratum_ml.runs.changes import compare_top
from stratum_ml.runs.identity import run_id_of
from stratum_ml.runs.read import N_REASONS, RunNotFound, RunSummary, get_run, previous_run
from stratum_ml.runs.tracking import end_failed, finish_scoring_run, start_scoring_run
from stratum_ml.scoring.fallback import fallback_ranking
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.sources.extract import extract_date, guard_as_of
from stratum_ml.sources.tables import SourceTables, sources_fingerprint
from stratum_ml.store import Store
from stratum_ml.store.tables import (
    Base,
    RunChangeRow,
    RunItemRow,
    RunReasonRow,
    RunShadowItemRow,
    ScoringRunRow,
)

__all__ = ["NO_REFERENCE", "RunModel", "create_run", "fallback_ranks", "shadow_rows"]

#: the drift note of a run whose model version has no training reference
NO_REFERENCE = "no reference"
#: rows per INSERT statement
CHUNK = 10_000


@dataclass(frozen=True)
class RunModel:
    """The model version a run scores with.

    Attributes
    ----------
    model : RiskModel
        The loaded model.
    info : ModelVersionInfo
        Its registered name, version and training run.
    reference : DriftReference or None
        Its training reference; None: read it from the training run
        (:func:`~stratum_ml.model.reference.load_reference`) when the run is made.
    """

    model: RiskModel
    info: ModelVersionInfo
    reference: DriftReference | None = None


class _Clock:
    """Seconds per named step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 4)


def fallback_ranks(scorer: Scorer, tables: SourceTables) -> pd.Series:
    """The current-practice rank of every scored dwelling (1 = most reports in the past year).

    The same ranking a paused service answers with
    (:func:`stratum_ml.scoring.fallback.fallback_ranking`: ties by ``address_id``),
    so a stored run's fallback list and the service's agree.

    Returns
    -------
    pandas.Series
        Ranks 1..n indexed like ``scorer.table`` (in rank order of the model).
    """
    ranking = fallback_ranking(scorer, tables)
    return ranking["rank"].reindex(scorer.table.index).rename("fallback_rank")


def _drift(
    scorer: Scorer,
    run_model: RunModel,
    thresholds: DriftThresholds | None,
    settings: Settings,
) -> tuple[DriftResult | None, str | None]:
    reference = run_model.reference
    if reference is None:
        try:
            reference = load_reference(run_model.info.run_id, settings)
        except ReferenceMissing:
            return None, NO_REFERENCE
    return drift_of(scorer, reference, thresholds), None


def _reasons(run_id: str, scorer: Scorer, ids: list[str]) -> list[dict[str, Any]]:
    """The reasons of ``ids`` in English and Dutch, from one TreeSHAP pass."""
    positions = scorer.features.index.get_indexer(pd.Index(ids))
    contributions = scorer.model.contributions(scorer.matrix[positions])
    contributions.index = pd.Index(ids)
    values = scorer.features.loc[ids]
    en, nl = (
        top_reasons(contributions, values, scorer.catalogue, n=N_REASONS, language=language)
        for language in ("en", "nl")
    )
    return _reason_rows(run_id, ids, en, nl)


def _reason_rows(
    run_id: str, ids: list[str], en: list[list[Reason]], nl: list[list[Reason]]
) -> list[dict[str, Any]]:
    rows = []
    for address_id, reasons_en, reasons_nl in zip(ids, en, nl, strict=True):
        for position, (r_en, r_nl) in enumerate(zip(reasons_en, reasons_nl, strict=True), 1):
            if r_en.feature != r_nl.feature:  # pragma: no cover - same contributions
                raise RuntimeError(f"reasons of {address_id} differ between languages")
            rows.append(
                {
                    "run_id": run_id,
                    "address_id": address_id,
                    "position": position,
                    "feature": r_en.feature,
                    "theme": r_en.theme,
                    "value": json.dumps(r_en.to_dict()["value"], default=str),
                    "contribution": r_en.contribution,
                    "direction": r_en.direction,
                    "text_en": r_en.text,
                    "text_nl": r_nl.text,
                }
            )
    return rows


def _item_rows(run_id: str, scorer: Scorer, fallback: pd.Series) -> list[dict[str, Any]]:
    table = scorer.table

    def texts(column: str) -> list[Any]:
        values = table[column].astype(object)
        return values.where(values.notna(), None).tolist()

    kinds: list[str | None] = [None] * len(table)
    shares: list[float | None] = [None] * len(table)
    if scorer.violation_types is not None:  # the model's likely violation type, per dwelling
        likely = scorer.violation_types.reindex(table.index)
        kinds = [
            str(v) if isinstance(v, str) and v else None
            for v in likely["violation_type"].astype(object).tolist()
        ]
        shares = [
            None if k is None or not np.isfinite(s) else float(s)
            for k, s in zip(
                kinds, likely["violation_type_share"].astype(np.float64).tolist(), strict=True
            )
        ]
    return [
        {
            "run_id": run_id,
            "address_id": a,
            "rank": r,
            "probability": p,
            "fallback_rank": f,
            "district": d,
            "neighbourhood": n,
            "violation_type": k,
            "violation_type_share": s,
        }
        for a, r, p, f, d, n, k, s in zip(
            table.index.astype(str).tolist(),
            table["rank"].astype(np.int64).tolist(),
            table["probability"].astype(np.float64).tolist(),
            fallback.reindex(table.index).astype(np.int64).tolist(),
            texts("district"),
            texts("neighbourhood"),
            kinds,
            shares,
            strict=True,
        )
    ]


def shadow_rows(
    run_id: str,
    shadow: RunModel,
    tables: SourceTables,
    as_of: dt.date,
    *,
    engine: str = "local",
    partitions: int | None = None,
    scheduler: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """The shadow model's rank and probability of every dwelling, and a note for the log.

    A shadow that cannot score these sources (it reads a feature whose table is
    missing) gives no rows and says why; the run itself is not held up by it.
    ``engine``, ``partitions`` and ``scheduler``: as in :func:`create_run`.
    """
    label = f"{shadow.info.name} v{shadow.info.version}"
    try:
        table = Scorer.from_sources(
            shadow.model,
            tables,
            as_of,
            engine=engine,
            partitions=partitions,
            scheduler=scheduler,
        ).table
    except ValueError as exc:
        return [], f"{label} could not score: {exc}"[:480]
    rows = [
        {
            "run_id": run_id,
            "address_id": a,
            "model_name": shadow.info.name,
            "model_version": shadow.info.version,
            "rank": r,
            "probability": p,
        }
        for a, r, p in zip(
            table.index.astype(str).tolist(),
            table["rank"].astype(np.int64).tolist(),
            table["probability"].astype(np.float64).tolist(),
            strict=True,
        )
    ]
    return rows, label


def _insert(session: Session, table: type[Base], rows: list[dict[str, Any]]) -> None:
    """Core executemany in chunks (about twice as fast as the ORM's bulk insert here)."""
    statement = insert(cast(Table, table.__table__))
    connection = session.connection()
    for start in range(0, len(rows), CHUNK):
        connection.execute(statement, rows[start : start + CHUNK])


def _changes(
    session: Session, run_id: str, scorer: Scorer, top_k: int, min_move: int, previous_id: str
) -> list[dict[str, Any]]:
    previous = session.scalars(
        select(ScoringRunRow).where(ScoringRunRow.run_id == previous_id)
    ).one()
    before = pd.DataFrame(
        session.execute(
            select(RunItemRow.address_id, RunItemRow.rank, RunItemRow.district).where(
                RunItemRow.run_id == previous_id, RunItemRow.rank <= previous.top_k
            )
        ).all(),
        columns=["address_id", "rank", "district"],
    ).set_index("address_id")
    frame = compare_top(scorer.table, top_k, before, previous.top_k, min_move=min_move)
    frame = frame.astype(object).where(frame.notna(), None)
    return [
        {"run_id": run_id, "previous_run_id": previous_id, **{str(k): v for k, v in r.items()}}
        for r in frame.to_dict("records")
    ]


def create_run(
    tables: SourceTables,
    as_of: dt.date,
    run_model: RunModel,
    store: Store,
    *,
    settings: Settings,
    top_k: int = 500,
    thresholds: DriftThresholds | None = None,
    changes_min_move: int = 10,
    shadow: RunModel | None = None,
    audit_checkpoint: Callable[[], tuple[str, str]] | None = None,
    engine: str = "local",
    partitions: int | None = None,
    scheduler: str | None = None,
) -> RunSummary:
    """Score the population as of a date with one model version and store it as a run.

    The run's notifications (:mod:`stratum_ml.notify`: counts per subscription, a
    drift message to admins) are written to the outbox in the transaction that
    stores the run; :func:`stratum_ml.notify.deliver` sends them.

    Parameters
    ----------
    tables : SourceTables
        The validated sources (their file fingerprints identify the run).
    as_of : datetime.date
        The scoring date; not after the extract date of ``tables``.
    run_model : RunModel
        The model version (and, optionally, its drift reference).
    store : Store
        The operational store the run is kept in.
    settings : Settings
        Where MLflow is (the experiment ``scoring``, the training reference).
    top_k : int, default 500
        The size of the work list: these addresses get reasons, and changes are
        counted on it.
    thresholds : DriftThresholds, optional
        When the run counts as drifted (default: the documented defaults).
    changes_min_move : int, default 10
        An address on both work lists counts as moved beyond this many places.
    shadow : RunModel, optional
        A second version (the challenger) to score every dwelling with beside the
        run's model; its ranks go to ``run_shadow_items`` (see :func:`shadow_rows`).
    audit_checkpoint : callable, optional
        Takes a signed checkpoint of the audit log's head
        (:mod:`stratum_ml.serving.audit_anchor`) and returns it as an MLflow tag
        ``(name, value)``, written to the run's MLflow run; called before the run is
        stored (when it fails, nothing is stored and the MLflow run ends FAILED).
    engine : {"local", "partitioned", "dask"}, default "local"
        How the features are built (:func:`~stratum_ml.features.partitioned.build_features_with`):
        in memory, one partition of addresses at a time, or those partitions on a
        Dask cluster. Every engine stores the same run (same id, same ranking).
    partitions : int, optional
        Partitions of the addresses (``partitioned``/``dask``; default ~50k each).
    scheduler : str, optional
        Dask scheduler address (``dask`` only; default a local cluster).

    Returns
    -------
    RunSummary
        ``stored_now`` is False when the same date, model version and sources were
        run before: that run is returned and nothing is computed or stored.

    Raises
    ------
    stratum_ml.sources.AsOfAfterExtractError
        When ``as_of`` lies after the extract date of the sources.
    stratum_ml.sources.ExtractDateError
        When the extract date cannot be known.
    ValueError
        When ``top_k`` or ``changes_min_move`` is out of range, ``engine`` is
        unknown, ``scheduler`` is given without the Dask engine, or the model needs
        features whose source tables are missing.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if scheduler is not None and engine != "dask":
        raise ValueError("a scheduler address needs the dask engine")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}")
    if changes_min_move < 0:
        raise ValueError(f"changes_min_move cannot be negative, not {changes_min_move}")
    guard_as_of(as_of, extract_date(tables))
    info = run_model.info
    fingerprint = sources_fingerprint(tables.fingerprints)
    run_id = run_id_of(as_of, info.name, info.version, fingerprint)
    with store.transaction() as session:
        stored = session.scalars(
            select(ScoringRunRow.run_id).where(ScoringRunRow.run_id == run_id)
        ).first()
    if stored is not None:
        return get_run(store, run_id)

    clock = _Clock()
    with clock.step("score"):
        scorer = Scorer.from_sources(
            run_model.model,
            tables,
            as_of,
            engine=engine,
            partitions=partitions,
            scheduler=scheduler,
        )
    top_ids = scorer.table.index[:top_k].astype(str).tolist()
    with clock.step("reasons"):
        reasons = _reasons(run_id, scorer, top_ids)
    with clock.step("fallback"):
        fallback = fallback_ranks(scorer, tables)
    with clock.step("drift"):
        drift, drift_note = _drift(scorer, run_model, thresholds, settings)
    items = _item_rows(run_id, scorer, fallback)
    shadow_items: list[dict[str, Any]] = []
    shadow_note = "none"
    if shadow is not None and shadow.info.version != info.version:
        with clock.step("shadow"):
            shadow_items, shadow_note = shadow_rows(
                run_id,
                shadow,
                tables,
                as_of,
                engine=engine,
                partitions=partitions,
                scheduler=scheduler,
            )

    mlflow_run_id = start_scoring_run(
        settings, f"{as_of} {info.name} v{info.version}", {"stratum.run_id": run_id}
    )
    try:
        tags = dict([audit_checkpoint()]) if audit_checkpoint is not None else {}
        with store.transaction() as session:
            previous = previous_run(session, info.name, as_of)
            with clock.step("changes"):
                changes = (
                    []
                    if previous is None
                    else _changes(session, run_id, scorer, top_k, changes_min_move, previous.run_id)
                )
            with clock.step("store"):
                session.add(
                    ScoringRunRow(
                        run_id=run_id,
                        as_of=as_of,
                        model_name=info.name,
                        model_version=info.version,
                        sources_fingerprint=fingerprint,
                        top_k=top_k,
                        n_items=len(items),
                        changes_min_move=changes_min_move,
                        created_at=dt.datetime.now(dt.UTC),
                        status="complete",
                        timings=json.dumps(clock.seconds),
                        drift=None if drift is None else drift.to_json(),
                        drifted=None if drift is None else drift.drifted,
                        drift_note=drift_note,
                        previous_run_id=None if previous is None else previous.run_id,
                        mlflow_run_id=mlflow_run_id,
                    )
                )
                session.flush()
                _insert(session, RunItemRow, items)
                _insert(session, RunReasonRow, reasons)
                _insert(session, RunChangeRow, changes)
                _insert(session, RunShadowItemRow, shadow_items)
            # the transactional outbox: the run's messages commit with the run
            enqueue_run_messages(session, run_id, public_url=settings.public_url)
    except IntegrityError as exc:
        end_failed(settings, mlflow_run_id)
        try:  # another process stored the same run meanwhile: that one stands
            return get_run(store, run_id)
        except RunNotFound:
            raise exc from None
    except BaseException:
        end_failed(settings, mlflow_run_id)
        raise
    summary = get_run(store, run_id, stored_now=True)
    _log(
        settings,
        summary,
        drift,
        store_seconds=clock.seconds["store"],
        tags=tags,
        shadow=shadow_note,
    )
    return summary


def _log(
    settings: Settings,
    summary: RunSummary,
    drift: DriftResult | None,
    *,
    store_seconds: float,
    tags: dict[str, str],
    shadow: str = "none",
) -> None:
    """The stored run's params, metrics and drift result in its MLflow run."""
    assert summary.mlflow_run_id is not None
    timings = summary.timings | {"store": store_seconds}
    metrics = {f"timing_{step}_s": s for step, s in timings.items()}
    metrics |= {f"changes_{change}": float(n) for change, n in summary.changes.items()}
    metrics |= {"n_items": float(summary.n_items), "top_k": float(summary.top_k)}
    if drift is not None:
        metrics |= drift.metrics()
    params = {
        "as_of": summary.as_of.isoformat(),
        "model_name": summary.model_name,
        "model_version": summary.model_version,
        "run_id": summary.run_id,
        "sources_fingerprint": summary.sources_fingerprint,
        "top_k": summary.top_k,
        "changes_min_move": summary.changes_min_move,
        "drift": summary.drift_note or ("drifted" if summary.drifted else "not drifted"),
        "previous_run_id": summary.previous_run_id or "none",
        "shadow_model": shadow,
    }
    finish_scoring_run(
        settings,
        summary.mlflow_run_id,
        params=params,
        metrics=metrics,
        drift_json=None if drift is None else drift.to_json(),
        tags=tags,
    )
