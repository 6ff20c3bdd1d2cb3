"""Design-based estimates of a run's date from its visit plan (``stratum evaluate --run``).

Joins what the store holds -- the run's ranks and plan, the visit outcomes that
name the run, the declined picks, and the rankings of every model version scored
on the same date (runs' own lists, and the challenger shadow-scored on this run,
whose ranks also place a plan's challenger stratum) -- into a
:class:`~stratum_ml.evaluation.design.StratifiedDesign` and estimates, per model
version and k, precision@k and recall@k, the prevalence, and (given the protected
groups) the false-positive-rate ratio of each group against the rest, with
:mod:`stratum_ml.evaluation.design`.

Which visits count: outcomes stored with this run's ``run_id`` (an outcome
without one is never a design visit), conclusive (``violation`` or
``no_violation``), one per address (the latest). A pick without such an outcome
-- unvisited, declined, or inconclusive -- is non-response.

A run without a plan (the period before plans) gives "not estimable" for every
quantity, with the bounds [0, 1] and the naive rate among whatever visits were
recorded on or after the run's date (labelled biased).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from stratum_ml.evaluation.design import (
    DesignEstimate,
    StratifiedDesign,
    fpr_ratio,
    precision_at_k,
    prevalence,
    recall_at_k,
)
from stratum_ml.runs.plan import (
    PlanNotFound,
    VisitPlan,
    challenger_of,
    get_plan,
    stratum_of_rank,
)
from stratum_ml.runs.read import RunNotFound
from stratum_ml.store import Store
from stratum_ml.store.tables import RunItemRow, RunShadowItemRow, ScoringRunRow, VisitOutcomeRow

__all__ = [
    "PlanVisits",
    "RunEvaluation",
    "evaluate_run",
    "latest_plan_visits",
    "plan_designs_on_date",
]

#: the key of a run's shadow ranking beside the runs' own
SHADOW_SUFFIX = ":shadow"
#: outcomes that are a label; ``inconclusive`` is non-response
CONCLUSIVE = ("violation", "no_violation")
#: the note of every design-based evaluation: its target is what visits find
WHAT_VISITS_FIND = (
    "these estimate what visits find, not the truth: a violation an inspector misses "
    "counts as none, so with imperfect detection the true precision is higher than the "
    "estimate (the design cannot correct detection errors)"
)


@dataclass(frozen=True)
class RunEvaluation:
    """The design-based estimates of one run's date.

    Attributes
    ----------
    run_id : str
    as_of : datetime.date
    plan : dict or None
        The plan's summary (:meth:`VisitPlan.to_dict`); None when the run has none.
    n_visits : int
        Conclusive visits of the plan's picks.
    n_nonresponse : int
        Picks without a conclusive outcome (unvisited, declined, inconclusive).
    prevalence : DesignEstimate
    precision : list of dict
        Per model version and k: ``model_version, run_id, scored_as, k`` and the
        estimate's fields (``estimate, low, high, method, n_visits, ...``);
        ``scored_as`` is ``run`` for a run's own list and ``shadow`` for the
        challenger shadow-scored on this run (estimated from the same visits).
    recall : list of dict
        The same for recall@k.
    fpr_ratios : list of dict
        Per model version, k and protected attribute: ``attribute`` and the ratio's
        fields (group ``True`` against ``False``).
    notes : list of str
    """

    run_id: str
    as_of: dt.date
    plan: dict[str, Any] | None
    n_visits: int
    n_nonresponse: int
    prevalence: DesignEstimate
    precision: list[dict[str, Any]]
    recall: list[dict[str, Any]]
    fpr_ratios: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (NaN as None)."""
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "plan": self.plan,
            "n_visits": self.n_visits,
            "n_nonresponse": self.n_nonresponse,
            "prevalence": self.prevalence.to_dict(),
            "precision": self.precision,
            "recall": self.recall,
            "fpr_ratios": self.fpr_ratios,
            "notes": self.notes,
        }


def _ranks_on_date(
    store: Store, run_id: str
) -> tuple[ScoringRunRow, dict[str, pd.Series], dict[str, str]]:
    """The run, the ranks of every run (model version) on its date, and their versions."""
    with store.transaction() as session:
        run = session.scalar(select(ScoringRunRow).where(ScoringRunRow.run_id == run_id))
        if run is None:
            raise RunNotFound(f"no scoring run {run_id}")
        same_day = list(
            session.scalars(
                select(ScoringRunRow)
                .where(ScoringRunRow.as_of == run.as_of)
                .order_by(ScoringRunRow.seq)
            )
        )
        ranks: dict[str, pd.Series] = {}
        for other in [run, *(r for r in same_day if r.run_id != run_id)]:
            rows = session.execute(
                select(RunItemRow.address_id, RunItemRow.rank).where(
                    RunItemRow.run_id == other.run_id
                )
            ).all()
            ranks[other.run_id] = pd.Series(
                [r[1] for r in rows], index=[r[0] for r in rows], dtype="int64"
            )
        versions = {r.run_id: f"{r.model_name} v{r.model_version}" for r in same_day}
    return run, ranks, versions


def _outcomes(store: Store, run_id: str | None, since: dt.date | None) -> pd.DataFrame:
    """Conclusive outcomes (latest per address) naming ``run_id``, or any since ``since``."""
    with store.transaction() as session:
        query = select(
            VisitOutcomeRow.address_id,
            VisitOutcomeRow.outcome,
            VisitOutcomeRow.inspected_at,
            VisitOutcomeRow.seq,
        )
        if run_id is not None:
            query = query.where(VisitOutcomeRow.run_id == run_id)
        if since is not None:
            query = query.where(VisitOutcomeRow.inspected_at >= since)
        rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=["address_id", "outcome", "inspected_at", "seq"])
    frame = frame.sort_values(["inspected_at", "seq"]).drop_duplicates("address_id", keep="last")
    frame = frame.loc[frame["outcome"].isin(CONCLUSIVE)]
    return pd.DataFrame(
        {"y": (frame["outcome"] == "violation").astype(float).to_numpy()},
        index=frame["address_id"].to_numpy(),
    )


def _design(
    plan: VisitPlan | None,
    ranks: pd.Series,
    visits: pd.DataFrame,
    challenger: pd.Series | None = None,
) -> StratifiedDesign:
    """The design over the run's population (ordered like ``ranks``).

    ``challenger``: the run's shadow ranks by address id, which place the dwellings
    of a plan's challenger stratum.
    """
    n = len(ranks)
    if plan is None:
        return StratifiedDesign.of(
            np.zeros(n, dtype=np.int64), np.zeros(n, bool), np.zeros(n, bool), np.full(n, np.nan)
        )
    shadow = None if challenger is None else challenger.reindex(ranks.index).to_numpy()
    stratum = stratum_of_rank(ranks.to_numpy(), plan.strata, shadow)
    picks = plan.items.set_index("address_id")
    sampled = ranks.index.isin(picks.index)
    y = visits["y"].reindex(ranks.index).to_numpy(dtype=np.float64)
    observed = sampled & ~np.isnan(y)
    design = StratifiedDesign.of(stratum, sampled, observed, y)
    stored = picks["inclusion_probability"].reindex(ranks.index[sampled]).to_numpy()
    if not np.allclose(design.inclusion_probability()[sampled], stored):
        raise ValueError(
            f"the plan of run {plan.run_id} does not match its strata: stored inclusion "
            "probabilities differ from the design's"
        )
    return design


def _naive(estimate: DesignEstimate, naive: float) -> DesignEstimate:
    """Replace the naive rate of a not-estimable result (no plan: any visits since the date)."""
    return replace(estimate, naive=naive)


def evaluate_run(
    store: Store,
    run_id: str,
    *,
    ks: tuple[int, ...] = (50, 100, 250, 500),
    groups: pd.DataFrame | None = None,
    min_visits: int = 10,
) -> RunEvaluation:
    """Horvitz-Thompson estimates of every model version scored on a run's date.

    Parameters
    ----------
    store : Store
    run_id : str
        A stored run; its plan (if any) is the design.
    ks : tuple of int
        The list sizes (larger than the population are skipped).
    groups : pandas.DataFrame, optional
        Indexed by address id, one column per protected attribute with values
        ``"True"``/``"False"`` (or booleans); missing: unknown, left out of both groups.
        With it, each attribute's false-positive-rate ratio (True against False).
    min_visits : int, default 10
        Fewest visits outside the top picks an estimate needs (see
        :func:`stratum_ml.evaluation.design.precision_at_k`).

    Returns
    -------
    RunEvaluation

    Raises
    ------
    RunNotFound
        When no run has this id.
    """
    run, all_ranks, versions = _ranks_on_date(store, run_id)
    ranks = all_ranks[run_id].sort_values()
    try:
        plan: VisitPlan | None = get_plan(store, run_id)
    except PlanNotFound:
        plan = None
    notes = []
    if plan is None:
        visits = _outcomes(store, None, run.as_of)
        notes.append(
            "this run has no visit plan: nothing is estimable; bounds are [0, 1] and the naive "
            "rate (visits recorded on or after the run's date) is biased"
        )
    else:
        visits = _outcomes(store, run_id, None)
        notes.append(WHAT_VISITS_FIND)
    shadow = challenger_of(store, run_id)
    if shadow is not None and shadow[0] not in versions.values():
        # the challenger shadow-scored on this run is estimated from the same visits
        all_ranks[run_id + SHADOW_SUFFIX] = shadow[1]
        versions[run_id + SHADOW_SUFFIX] = shadow[0]
    design = _design(plan, ranks, visits, None if shadow is None else shadow[1])
    n_visits = int(design.observed.sum())
    n_nonresponse = int((design.sampled & ~design.observed).sum())
    known = visits["y"].reindex(ranks.index)

    def finish(est: DesignEstimate, selection: np.ndarray) -> DesignEstimate:
        if plan is not None:
            return est
        hits = known[selection].dropna()
        return _naive(est, float(hits.mean()) if len(hits) else float("nan"))

    precision: list[dict[str, Any]] = []
    recall: list[dict[str, Any]] = []
    fpr: list[dict[str, Any]] = []
    group_masks = _group_masks(groups, ranks.index) if groups is not None else {}
    for other_id, other_ranks in all_ranks.items():
        aligned = other_ranks.reindex(ranks.index)
        version = versions.get(other_id, other_id)
        for k in ks:
            if k > len(ranks):
                continue
            top = (aligned <= k).fillna(False).to_numpy(dtype=bool)
            if not top.any():
                continue
            head = {
                "model_version": version,
                "run_id": other_id.removesuffix(SHADOW_SUFFIX),
                "scored_as": "shadow" if other_id.endswith(SHADOW_SUFFIX) else "run",
                "k": k,
            }
            p = finish(precision_at_k(design, top, min_visits=min_visits), top)
            precision.append({**head, **p.to_dict()})
            r = finish(recall_at_k(design, top, min_visits=min_visits), top)
            recall.append({**head, **r.to_dict()})
            for attribute, (inside, outside) in group_masks.items():
                ratio = fpr_ratio(design, top, inside, outside, min_visits=min_visits)
                fpr.append({**head, "attribute": attribute, **ratio.to_dict()})
    everyone = np.ones(len(ranks), dtype=bool)
    return RunEvaluation(
        run_id=run_id,
        as_of=run.as_of,
        plan=None if plan is None else plan.to_dict(),
        n_visits=n_visits,
        n_nonresponse=n_nonresponse,
        prevalence=finish(prevalence(design, min_visits=min_visits), everyone),
        precision=precision,
        recall=recall,
        fpr_ratios=fpr,
        notes=notes,
    )


def _group_masks(groups: pd.DataFrame, index: pd.Index) -> dict[str, tuple[Any, Any]]:
    masks = {}
    for column in groups.columns:
        values = groups[column].reindex(index).astype("string")
        inside = (values == "True").fillna(False).to_numpy(dtype=bool)
        outside = (values == "False").fillna(False).to_numpy(dtype=bool)
        if inside.any() and outside.any():
            masks[str(column)] = (inside, outside)
    return masks


def _version_ranks(store: Store, as_of: dt.date) -> dict[str, pd.Series]:
    """Every ranking stored for a date, by ``model_name vN``: runs' lists and shadows."""
    ranks: dict[str, pd.Series] = {}
    with store.transaction() as session:
        runs = list(
            session.scalars(
                select(ScoringRunRow)
                .where(ScoringRunRow.as_of == as_of)
                .order_by(ScoringRunRow.seq.desc())
            )
        )
        for run in runs:
            label = f"{run.model_name} v{run.model_version}"
            if label not in ranks:
                rows = session.execute(
                    select(RunItemRow.address_id, RunItemRow.rank).where(
                        RunItemRow.run_id == run.run_id
                    )
                ).all()
                ranks[label] = pd.Series(
                    [r[1] for r in rows], index=[r[0] for r in rows], dtype="int64"
                )
            shadow = session.execute(
                select(
                    RunShadowItemRow.address_id,
                    RunShadowItemRow.rank,
                    RunShadowItemRow.model_name,
                    RunShadowItemRow.model_version,
                ).where(RunShadowItemRow.run_id == run.run_id)
            ).all()
            if shadow:
                label = f"{shadow[0][2]} v{shadow[0][3]}"
                if label not in ranks:
                    ranks[label] = pd.Series(
                        [r[1] for r in shadow], index=[r[0] for r in shadow], dtype="int64"
                    )
    return ranks


def plan_designs_on_date(
    store: Store, model_name: str, model_version: str
) -> list[tuple[str, dt.date, StratifiedDesign, dict[str, pd.Series]]]:
    """The visit plans with visits on the latest date a version was scored, newest first.

    The date is the latest ``as_of`` of a run that ranked ``model_version``, as the
    run's own model or as its shadow (a challenger is shadow-scored on every run).
    Every run of that date with a plan holding at least one conclusive visit gives
    one entry: the plan's run id, the date, its design over the plan run's
    population, and every ranking of that date (runs' lists and shadows, by
    ``model_name vN``) aligned to that population (missing where not scored).
    """
    version = str(model_version)
    with store.transaction() as session:
        own = session.scalar(
            select(ScoringRunRow.as_of)
            .where(ScoringRunRow.model_name == model_name, ScoringRunRow.model_version == version)
            .order_by(ScoringRunRow.as_of.desc())
        )
        shadowed = session.scalar(
            select(ScoringRunRow.as_of)
            .join(RunShadowItemRow, RunShadowItemRow.run_id == ScoringRunRow.run_id)
            .where(
                RunShadowItemRow.model_name == model_name,
                RunShadowItemRow.model_version == version,
            )
            .order_by(ScoringRunRow.as_of.desc())
        )
        dates = [d for d in (own, shadowed) if d is not None]
        if not dates:
            return []
        as_of = max(dates)
        same_day = list(
            session.scalars(
                select(ScoringRunRow)
                .where(ScoringRunRow.as_of == as_of)
                .order_by(ScoringRunRow.seq.desc())
            )
        )
    by_version = _version_ranks(store, as_of)
    found = []
    for candidate in same_day:
        try:
            plan = get_plan(store, candidate.run_id)
        except PlanNotFound:
            continue
        visits = _outcomes(store, candidate.run_id, None)
        if visits.empty:
            continue
        _, all_ranks, _ = _ranks_on_date(store, candidate.run_id)
        ranks = all_ranks[candidate.run_id].sort_values()
        shadow = challenger_of(store, candidate.run_id)
        design = _design(plan, ranks, visits, None if shadow is None else shadow[1])
        if not design.observed.any():
            continue
        aligned = {label: r.reindex(ranks.index) for label, r in by_version.items()}
        found.append((candidate.run_id, as_of, design, aligned))
    return found


@dataclass(frozen=True)
class PlanVisits:
    """The design-based visits of one scoring date: a run's plan and the visits that answer it.

    Attributes
    ----------
    run_id : str
        The run whose plan drew the visits.
    as_of : datetime.date
        Its scoring date.
    design : StratifiedDesign
        The plan's design over the run's population, in the order of ``address_ids``.
    address_ids : pandas.Index
        The run's population (the addresses it ranked).
    """

    run_id: str
    as_of: dt.date
    design: StratifiedDesign
    address_ids: pd.Index

    @property
    def n_visits(self) -> int:
        """Drawn addresses with a conclusive outcome."""
        return int(self.design.observed.sum())

    def describe(self) -> str:
        """Where the estimates come from, for tables and reports."""
        return (
            f"visit plan of run {self.run_id} ({self.as_of}), {self.n_visits} visits "
            "(Horvitz-Thompson)"
        )


def latest_plan_visits(
    store: Store, *, model_name: str | None = None, until: dt.date | None = None
) -> PlanVisits | None:
    """The latest run with a visit plan that has at least one conclusive visit, or None.

    Parameters
    ----------
    store : Store
    model_name : str, optional
        Only runs of this registered model (default: any).
    until : datetime.date, optional
        Only runs scored on or before this date (e.g. the sources' extract date).

    Returns
    -------
    PlanVisits or None
        None when no such run exists (the period before plans, or no visits yet).
    """
    query = select(ScoringRunRow.run_id).order_by(
        ScoringRunRow.as_of.desc(), ScoringRunRow.seq.desc()
    )
    if model_name is not None:
        query = query.where(ScoringRunRow.model_name == model_name)
    if until is not None:
        query = query.where(ScoringRunRow.as_of <= until)
    with store.transaction() as session:
        run_ids = list(session.scalars(query))
    for run_id in run_ids:
        try:
            plan = get_plan(store, run_id)
        except PlanNotFound:
            continue
        visits = _outcomes(store, run_id, None)
        if visits.empty:
            continue
        run, all_ranks, _ = _ranks_on_date(store, run_id)
        ranks = all_ranks[run_id].sort_values()
        shadow = challenger_of(store, run_id)  # places a challenger stratum's dwellings
        design = _design(plan, ranks, visits, None if shadow is None else shadow[1])
        if design.observed.any():
            return PlanVisits(run_id, run.as_of, design, pd.Index(ranks.index))
    return None
