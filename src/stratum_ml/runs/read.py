"""Reading stored runs: the list of runs, one run, its work list, its changes."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stratum_ml.evaluation.explain import Reason
from stratum_ml.runs.changes import ordered_changes
from stratum_ml.store import Store
from stratum_ml.store.tables import (
    CHANGES,
    RunChangeRow,
    RunItemRow,
    RunReasonRow,
    RunShadowItemRow,
    ScoringRunRow,
)

#: the states of a work-list item against the previous run
STATES = ("new", "rank change", "unchanged")
#: reasons shown per address of a work list
N_REASONS = 3


def state_of(rank: int, previous_rank: int | None) -> str:
    """A work-list item's state against the previous run: one of :data:`STATES`.

    ``new`` when it was not on the previous run's work list (``previous_rank`` None;
    every item of a model's first run), ``unchanged`` at the same rank, ``rank change``
    at another. The one rule behind :func:`work_list` and the API's ``priority_list``.

    Examples
    --------
    >>> state_of(3, None), state_of(3, 3), state_of(3, 7)
    ('new', 'unchanged', 'rank change')
    """
    if previous_rank is None:
        return "new"
    return "unchanged" if previous_rank == rank else "rank change"


class RunNotFound(LookupError):
    """No stored run has this id."""


@dataclass(frozen=True)
class RunSummary:
    """A stored run, as ``stratum runs list`` and ``stratum run --json`` show it.

    Attributes
    ----------
    run_id : str
    as_of : datetime.date
    model_name, model_version, sources_fingerprint : str
    top_k : int
        The size of the work list (the addresses with reasons).
    n_items : int
        Dwellings scored.
    changes_min_move : int
        Places an address had to move to count as moved.
    created_at : datetime.datetime
    status : str
    timings : dict of str to float
        Seconds per step.
    drifted : bool or None
        None when the model version has no drift reference (``drift_note`` says so).
    drift_note : str or None
    previous_run_id : str or None
        The run the changes are against; None for the first run of a model.
    mlflow_run_id : str or None
        The run in the MLflow experiment ``scoring``.
    changes : dict of str to int
        Count per change (``entered``, ``left``, ``moved_up``, ``moved_down``).
    stored_now : bool
        True when this call stored the run, False when it was stored before.
    """

    run_id: str
    as_of: dt.date
    model_name: str
    model_version: str
    sources_fingerprint: str
    top_k: int
    n_items: int
    changes_min_move: int
    created_at: dt.datetime
    status: str
    timings: dict[str, float]
    drifted: bool | None
    drift_note: str | None
    previous_run_id: str | None
    mlflow_run_id: str | None
    changes: dict[str, int] = field(default_factory=dict)
    stored_now: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "sources_fingerprint": self.sources_fingerprint,
            "top_k": self.top_k,
            "n_items": self.n_items,
            "changes_min_move": self.changes_min_move,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "timings": self.timings,
            "drifted": self.drifted,
            "drift_note": self.drift_note,
            "previous_run_id": self.previous_run_id,
            "mlflow_run_id": self.mlflow_run_id,
            "changes": self.changes,
            "stored_now": self.stored_now,
        }


def _change_counts(session: Session, run_ids: list[str]) -> dict[str, dict[str, int]]:
    rows = session.execute(
        select(RunChangeRow.run_id, RunChangeRow.change, func.count())
        .where(RunChangeRow.run_id.in_(run_ids))
        .group_by(RunChangeRow.run_id, RunChangeRow.change)
    ).all()
    out: dict[str, dict[str, int]] = {r: dict.fromkeys(CHANGES, 0) for r in run_ids}
    for run_id, change, n in rows:
        out[run_id][change] = int(n)
    return out


def summary_of(row: ScoringRunRow, changes: dict[str, int], *, stored_now: bool) -> RunSummary:
    """A :class:`RunSummary` of a stored row."""
    return RunSummary(
        run_id=row.run_id,
        as_of=row.as_of,
        model_name=row.model_name,
        model_version=row.model_version,
        sources_fingerprint=row.sources_fingerprint,
        top_k=row.top_k,
        n_items=row.n_items,
        changes_min_move=row.changes_min_move,
        created_at=row.created_at,
        status=row.status,
        timings=json.loads(row.timings),
        drifted=row.drifted,
        drift_note=row.drift_note,
        previous_run_id=row.previous_run_id,
        mlflow_run_id=row.mlflow_run_id,
        changes=changes,
        stored_now=stored_now,
    )


def _row(session: Session, run_id: str) -> ScoringRunRow:
    row = session.scalars(select(ScoringRunRow).where(ScoringRunRow.run_id == run_id)).first()
    if row is None:
        raise RunNotFound(f"no scoring run {run_id!r} in the operational store")
    return row


def get_run(store: Store, run_id: str, *, stored_now: bool = False) -> RunSummary:
    """The stored run ``run_id``.

    Raises
    ------
    RunNotFound
        When no run has this id.
    """
    with store.transaction() as session:
        row = _row(session, run_id)
        return summary_of(row, _change_counts(session, [run_id])[run_id], stored_now=stored_now)


def drift_of_run(store: Store, run_id: str) -> dict[str, Any] | None:
    """The drift result a run stored (as a JSON object); None when it had no reference."""
    with store.transaction() as session:
        text = _row(session, run_id).drift
    return None if text is None else dict(json.loads(text))


def list_runs(store: Store, *, model_name: str | None = None, limit: int = 100) -> list[RunSummary]:
    """The stored runs, newest first (by as-of date, then by when they were stored).

    Parameters
    ----------
    store : Store
    model_name : str, optional
        Only the runs of this registered model.
    limit : int, default 100
    """
    query = select(ScoringRunRow).order_by(ScoringRunRow.as_of.desc(), ScoringRunRow.seq.desc())
    if model_name is not None:
        query = query.where(ScoringRunRow.model_name == model_name)
    with store.transaction() as session:
        rows = list(session.scalars(query.limit(limit)))
        counts = _change_counts(session, [r.run_id for r in rows]) if rows else {}
        return [summary_of(r, counts[r.run_id], stored_now=False) for r in rows]


def previous_run(session: Session, model_name: str, as_of: dt.date) -> ScoringRunRow | None:
    """The run a new run of ``model_name`` as of ``as_of`` is compared with.

    The latest stored run of the same model name on or before ``as_of`` (on the
    same date: the one stored last, e.g. with the version promoted before).
    """
    return session.scalars(
        select(ScoringRunRow)
        .where(ScoringRunRow.model_name == model_name, ScoringRunRow.as_of <= as_of)
        .order_by(ScoringRunRow.as_of.desc(), ScoringRunRow.seq.desc())
        .limit(1)
    ).first()


def _items(session: Session, run_id: str, top_k: int) -> pd.DataFrame:
    rows = session.execute(
        select(
            RunItemRow.rank,
            RunItemRow.address_id,
            RunItemRow.probability,
            RunItemRow.fallback_rank,
            RunItemRow.district,
            RunItemRow.neighbourhood,
            RunItemRow.violation_type,
            RunItemRow.violation_type_share,
        )
        .where(RunItemRow.run_id == run_id, RunItemRow.rank <= top_k)
        .order_by(RunItemRow.rank)
    ).all()
    columns = [
        "rank",
        "address_id",
        "probability",
        "fallback_rank",
        "district",
        "neighbourhood",
        "violation_type",
        "violation_type_share",
    ]
    return pd.DataFrame(rows, columns=columns)


def work_list(store: Store, run_id: str, *, language: Literal["en", "nl"] = "en") -> pd.DataFrame:
    """The work list of a run: its top K, ranked, with state and reasons.

    Parameters
    ----------
    store : Store
    run_id : str
    language : {"en", "nl"}
        Language of the reason texts.

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``address_id``, ``probability``, ``fallback_rank``, ``district``,
        ``neighbourhood``, ``violation_type`` and ``violation_type_share`` (the
        model's likely violation type and its share; None for a model without one
        and for runs stored before they were kept), ``state`` (``new``: not on the
        previous run's list;
        ``rank change``: on it at another rank, ``previous_rank``; ``unchanged``;
        every item of a model's first run is ``new``), ``previous_rank`` and
        ``reason_1`` ... ``reason_3``.

    Raises
    ------
    RunNotFound
    """
    text = RunReasonRow.text_nl if language == "nl" else RunReasonRow.text_en
    with store.transaction() as session:
        run = _row(session, run_id)
        items = _items(session, run_id, run.top_k)
        previous = (
            None
            if run.previous_run_id is None
            else _items(session, run.previous_run_id, _row(session, run.previous_run_id).top_k)
        )
        reasons = session.execute(
            select(RunReasonRow.address_id, RunReasonRow.position, text).where(
                RunReasonRow.run_id == run_id, RunReasonRow.position <= N_REASONS
            )
        ).all()
    before = (
        pd.Series(dtype="Int64")
        if previous is None
        else previous.set_index("address_id")["rank"].astype("Int64")
    )
    items["previous_rank"] = items["address_id"].map(before).astype("Int64")
    items["state"] = [
        state_of(int(rank), None if pd.isna(previous) else int(previous))
        for rank, previous in zip(items["rank"], items["previous_rank"], strict=True)
    ]
    texts = pd.DataFrame(reasons, columns=["address_id", "position", "text"])
    wide = texts.pivot(index="address_id", columns="position", values="text")
    for i in range(1, N_REASONS + 1):
        column = wide[i] if i in wide.columns else pd.Series(dtype="object")
        items[f"reason_{i}"] = items["address_id"].map(column)
    order = ["rank", "address_id", "probability", "state", "previous_rank", "fallback_rank"]
    rest = [c for c in items.columns if c not in order]
    return items[order + rest]


def reasons_of(
    store: Store,
    run_id: str,
    address_ids: list[str],
    *,
    n: int = N_REASONS,
    language: Literal["en", "nl"] = "en",
) -> dict[str, list[Reason]]:
    """The reasons a run stored for these addresses, strongest first (at most ``n`` each).

    Only the run's top K have stored reasons; an address of the top K whose
    contributions all lower its risk has none (an empty list, as
    :meth:`stratum_ml.scoring.Scorer.reasons` gives it). Addresses off the top K are
    absent. The reasons carry no ``contribution_pp`` (it is not stored: see
    :meth:`stratum_ml.scoring.Scorer.in_points`).

    Raises
    ------
    RunNotFound
    """
    text = RunReasonRow.text_nl if language == "nl" else RunReasonRow.text_en
    with store.transaction() as session:
        run = _row(session, run_id)
        top = session.scalars(
            select(RunItemRow.address_id).where(
                RunItemRow.run_id == run_id,
                RunItemRow.address_id.in_(address_ids),
                RunItemRow.rank <= run.top_k,
            )
        ).all()
        rows = session.execute(
            select(
                RunReasonRow.address_id,
                RunReasonRow.feature,
                RunReasonRow.theme,
                RunReasonRow.value,
                RunReasonRow.contribution,
                RunReasonRow.direction,
                text,
            )
            .where(
                RunReasonRow.run_id == run_id,
                RunReasonRow.address_id.in_(address_ids),
                RunReasonRow.position <= min(n, N_REASONS),
            )
            .order_by(RunReasonRow.address_id, RunReasonRow.position)
        ).all()
    out: dict[str, list[Reason]] = {str(a): [] for a in top}
    for address, feature, theme, value, contribution, direction, words in rows:
        out.setdefault(str(address), []).append(
            Reason(
                feature=feature,
                theme=theme,
                value=json.loads(value),
                contribution=float(contribution),
                direction=direction,
                text=words,
            )
        )
    return out


def fallback_list(store: Store, run_id: str) -> pd.DataFrame:
    """The run's work list by the fallback ranking (current practice), for a paused model.

    Same length as the run's work list (its top K), ordered by ``fallback_rank``
    (reports in the past year; ties in the run's fixed order). No probability and
    no reasons: they are the model's, and a paused model gives no advice.

    Returns
    -------
    pandas.DataFrame
        ``rank`` (the fallback rank), ``address_id``, ``district``, ``neighbourhood``,
        ``model_rank``.

    Raises
    ------
    RunNotFound
    """
    with store.transaction() as session:
        run = _row(session, run_id)
        rows = session.execute(
            select(
                RunItemRow.fallback_rank,
                RunItemRow.address_id,
                RunItemRow.district,
                RunItemRow.neighbourhood,
                RunItemRow.rank,
            )
            .where(RunItemRow.run_id == run_id, RunItemRow.fallback_rank <= run.top_k)
            .order_by(RunItemRow.fallback_rank)
        ).all()
    columns = ["rank", "address_id", "district", "neighbourhood", "model_rank"]
    return pd.DataFrame(rows, columns=columns)


def shadow_ranks(store: Store, run_id: str) -> pd.DataFrame:
    """The shadow (challenger) ranks a run stored beside its own, one row per dwelling.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``address_id``: ``model_name``, ``model_version``, ``rank``
        (the shadow's), ``probability`` (the shadow's) and ``run_rank`` (the run's
        own model's), in the shadow's rank order; empty when the run has no shadow.

    Raises
    ------
    RunNotFound
    """
    with store.transaction() as session:
        _row(session, run_id)
        rows = session.execute(
            select(
                RunShadowItemRow.address_id,
                RunShadowItemRow.model_name,
                RunShadowItemRow.model_version,
                RunShadowItemRow.rank,
                RunShadowItemRow.probability,
                RunItemRow.rank,
            )
            .join(
                RunItemRow,
                (RunItemRow.run_id == RunShadowItemRow.run_id)
                & (RunItemRow.address_id == RunShadowItemRow.address_id),
            )
            .where(RunShadowItemRow.run_id == run_id)
            .order_by(RunShadowItemRow.rank)
        ).all()
    columns = ["address_id", "model_name", "model_version", "rank", "probability", "run_rank"]
    return pd.DataFrame(rows, columns=columns).set_index("address_id")


def changes_of(store: Store, run_id: str) -> pd.DataFrame:
    """The changes a run stored against its previous run.

    Returns
    -------
    pandas.DataFrame
        ``address_id``, ``change`` (``entered``, ``left``, ``moved_up``,
        ``moved_down``), ``rank``, ``previous_rank``, ``district``; empty for a
        model's first run.

    Raises
    ------
    RunNotFound
    """
    with store.transaction() as session:
        _row(session, run_id)
        rows = session.execute(
            select(
                RunChangeRow.address_id,
                RunChangeRow.change,
                RunChangeRow.rank,
                RunChangeRow.previous_rank,
                RunChangeRow.district,
            ).where(RunChangeRow.run_id == run_id)
        ).all()
    frame = pd.DataFrame(
        rows, columns=["address_id", "change", "rank", "previous_rank", "district"]
    )
    frame["rank"] = frame["rank"].astype("Int64")
    frame["previous_rank"] = frame["previous_rank"].astype("Int64")
    return ordered_changes(frame)


def changes_by_district(changes: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Counts per district and change (a district of ``None`` is ``"unknown"``)."""
    out: dict[str, dict[str, int]] = {}
    districts = changes["district"].fillna("unknown").astype(str).tolist()
    for district, change in zip(districts, changes["change"].astype(str).tolist(), strict=True):
        counts = out.setdefault(district, dict.fromkeys(CHANGES, 0))
        counts[change] += 1
    return dict(sorted(out.items()))
