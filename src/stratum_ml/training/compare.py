"""Champion and challenger on the same visits: the paired comparison promotion decides on.

:func:`paired_comparison` scores two registered versions on the *challenger's*
logged holdout and population (the frames its run logged under ``evaluation/``) and
returns the paired difference in precision@k
(:func:`~stratum_ml.evaluation.paired.paired_precision_at_k`). :func:`paired_verdict`
turns it into promotion's check: the challenger is refused only when it is worse
beyond the interval of the paired difference (its upper end below ``-tolerance``).

Which model of a version is scored: its **evaluated model** -- the split model its
run measured, logged as ``evaluated_model/`` when a final fit on every visit was
registered (see :mod:`stratum_ml.training.refit`), else the registered model, which
then is the split model. A registered final fit has seen the holdout visits; scored
on them it would flatter itself. For the same reason, the visits used are those
dated on or after both versions' holdout start: visits neither evaluated model
learnt from.

The champion's number here is computed by the estimator of ``stratum evaluate``
(random-sample visits in the top k, the region at or above the k-th highest score);
when both versions were trained on the same visits it equals the champion's logged
honest precision@k wherever that was not widened.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from stratum_ml.config import Settings
from stratum_ml.evaluation.design import (
    NOT_ESTIMABLE,
    DesignEstimate,
    precision_at_k,
    precision_difference_at_k,
)
from stratum_ml.evaluation.metrics import HonestEstimate, honest_precision_at_k
from stratum_ml.evaluation.paired import MIN_VISITS, PairedComparison, paired_precision_at_k
from stratum_ml.model.registry import (
    download_run_artifact,
    load_version,
)
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.runs.estimates import plan_designs_on_date
from stratum_ml.store import Store
from stratum_ml.training.holdout import RANDOM_REASON
from stratum_ml.training.report import read_logged_report
from stratum_ml.training.tracking import EVALUATED_MODEL_ARTIFACT

__all__ = [
    "BOOTSTRAP_METHOD",
    "DESIGN_METHOD",
    "ComparedVersion",
    "DesignComparison",
    "VersionComparison",
    "evaluated_model",
    "paired_comparison",
    "paired_verdict",
]


@dataclass(frozen=True)
class ComparedVersion:
    """One side of a comparison: which version, and which of its models was scored."""

    version: str
    run_id: str
    model: str  # "evaluated (split) model" or "registered model"
    holdout_from: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain fields for ``--json``."""
        return {
            "version": self.version,
            "run_id": self.run_id,
            "model": self.model,
            "holdout_from": self.holdout_from,
        }


#: how a comparison was made, in words (``method`` of a :class:`VersionComparison`)
DESIGN_METHOD = "design-based (Horvitz-Thompson) on the visits of a visit plan"
BOOTSTRAP_METHOD = "paired bootstrap on the challenger's random-sample holdout visits"


@dataclass(frozen=True)
class DesignComparison:
    """Both versions' rankings on the same visits of one run's visit plan.

    Attributes
    ----------
    plan_run_id, as_of : str
        The run whose plan drew the visits, and its date.
    n_visits : int
        Conclusive visits of the plan's picks.
    rows : tuple
        Per k: ``(k, challenger, champion, difference)``, each a
        :class:`~stratum_ml.evaluation.design.DesignEstimate` (the difference is
        challenger - champion, paired: one Horvitz-Thompson total).
    decide_k : int
        The k the decision rests on.
    """

    plan_run_id: str
    as_of: str
    n_visits: int
    rows: tuple[tuple[int, DesignEstimate, DesignEstimate, DesignEstimate], ...]
    decide_k: int

    @property
    def decision(self) -> DesignEstimate | None:
        """The difference at ``decide_k``; None when that k is larger than the population."""
        return next((d for k, _, _, d in self.rows if k == self.decide_k), None)

    @property
    def estimable(self) -> bool:
        """Whether the difference at ``decide_k`` is estimable from the design."""
        d = self.decision
        return d is not None and d.method != NOT_ESTIMABLE

    def describe(self) -> str:
        """The decision's difference and interval, in words."""
        d = self.decision
        if d is None or d.method == NOT_ESTIMABLE:
            low, high = (math.nan, math.nan) if d is None else (d.low, d.high)
            return (
                f"difference in precision@{self.decide_k} not estimable from the plan "
                f"(bounds [{low:+.3f}, {high:+.3f}])"
            )
        return (
            f"difference in precision@{self.decide_k} (challenger - champion) "
            f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}] ({d.method})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain fields for ``--json``."""
        return {
            "plan_run_id": self.plan_run_id,
            "as_of": self.as_of,
            "n_visits": self.n_visits,
            "decide_k": self.decide_k,
            "rows": [
                {
                    "k": k,
                    "challenger": a.to_dict(),
                    "champion": b.to_dict(),
                    "difference": d.to_dict(),
                }
                for k, a, b, d in self.rows
            ],
        }


def design_comparison(
    store: Store,
    name: str,
    challenger: str,
    champion: str,
    ks: tuple[int, ...],
    decide_k: int,
) -> DesignComparison | None:
    """Challenger and champion on the visit plan of the challenger's latest run date.

    Both versions must have been scored on that date (the challenger's shadow run and
    the champion's run); the plan is that of a run of the date with at least one
    conclusive visit. None when there is no such plan: the caller falls back to the
    paired bootstrap on the holdout.
    """
    wanted = {f"{name} v{challenger}": "challenger", f"{name} v{champion}": "champion"}
    for plan_run_id, as_of, design, ranks in plan_designs_on_date(store, name, challenger):
        by_role = {role: ranks[label] for label, role in wanted.items() if label in ranks}
        if set(by_role) != {"challenger", "champion"}:
            continue
        rows = []
        for k in ks:
            ours = (by_role["challenger"] <= k).fillna(False).to_numpy(dtype=bool)
            theirs = (by_role["champion"] <= k).fillna(False).to_numpy(dtype=bool)
            if k > design.size or int(ours.sum()) != k or int(theirs.sum()) != k:
                continue
            rows.append(
                (
                    k,
                    precision_at_k(design, ours),
                    precision_at_k(design, theirs),
                    precision_difference_at_k(design, ours, theirs),
                )
            )
        return DesignComparison(
            plan_run_id, str(as_of), int(design.observed.sum()), tuple(rows), decide_k
        )
    return None


@dataclass(frozen=True)
class VersionComparison:
    """Two versions scored on the challenger's visits, with the paired differences."""

    challenger: ComparedVersion
    champion: ComparedVersion
    visits_from: str
    comparison: PairedComparison
    challenger_estimate: HonestEstimate
    champion_estimate: HonestEstimate
    design: DesignComparison | None = None

    @property
    def method(self) -> str:
        """What the decision rests on: the plan's visits (design-based) or the bootstrap."""
        if self.design is not None and self.design.estimable:
            return f"{DESIGN_METHOD} of run {self.design.plan_run_id} ({self.design.as_of})"
        return BOOTSTRAP_METHOD

    def to_dict(self) -> dict[str, Any]:
        """Plain fields for ``--json``."""
        return {
            "method": self.method,
            "design": None if self.design is None else self.design.to_dict(),
            "challenger": self.challenger.to_dict(),
            "champion": self.champion.to_dict(),
            "visits": f"random-sample holdout visits of version {self.challenger.version} "
            f"from {self.visits_from}",
            **self.comparison.to_dict(),
        }


def evaluated_model(
    client: MlflowClient, name: str, ref: str, settings: Settings
) -> tuple[RiskModel, ComparedVersion]:
    """The model a version's logged evaluation measured, and which one it is.

    The split model (``evaluated_model/``) when the version registered a final fit on
    every visit, else the registered model (which then is the split model).
    """
    registered, mv = load_version(client, name, ref, settings)
    run_id = str(mv.run_id)
    tags = client.get_run(run_id).data.tags
    model, which = registered, "registered model"
    if "final_fit_until" in tags:
        with tempfile.TemporaryDirectory(prefix="stratum-compare-") as tmp:
            folder = download_run_artifact(run_id, EVALUATED_MODEL_ARTIFACT, Path(tmp), settings)
            model, which = RiskModel.load(folder), "evaluated (split) model"
    holdout_from = model.metadata_.get("holdout_from")
    return model, ComparedVersion(
        str(mv.version), run_id, which, str(holdout_from) if holdout_from else None
    )


def _frames(run_id: str, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    with tempfile.TemporaryDirectory(prefix="stratum-compare-") as tmp_name:
        tmp = Path(tmp_name)
        holdout = pd.read_parquet(
            download_run_artifact(run_id, "evaluation/holdout.parquet", tmp, settings)
        )
        population = pd.read_parquet(
            download_run_artifact(run_id, "evaluation/population.parquet", tmp, settings)
        )
    return holdout, population


def paired_comparison(
    client: MlflowClient,
    name: str,
    challenger: str,
    champion: str,
    settings: Settings,
    *,
    ks: tuple[int, ...] | None = None,
    decide_k: int | None = None,
    seed: int = 0,
    store: Store | None = None,
) -> VersionComparison:
    """Score two versions on the challenger's holdout visits and pair their precision@k.

    Parameters
    ----------
    client : MlflowClient
    name : str
        Registered model.
    challenger, champion : str
        Versions or aliases. The visits are the challenger's.
    settings : Settings
    ks : tuple of int, optional
        Cut-offs to show; default: the challenger's logged report's.
    decide_k : int, optional
        The cut-off the decision rests on; default: the challenger's headline k.
    seed : int, default 0
        Bootstrap seed.
    store : Store, optional
        The operational store. Where the run of the challenger's latest date has a
        visit plan with visits and both versions were scored on that date, the
        comparison also carries the design-based (Horvitz-Thompson) estimates of both
        rankings on the plan's visits (:func:`design_comparison`), and the decision
        rests on their paired difference; otherwise on the bootstrap.

    Returns
    -------
    VersionComparison

    Raises
    ------
    ValueError
        If a model cannot be scored on the challenger's frames (it reads a feature
        they lack) or no population is left to rank.
    mlflow.exceptions.MlflowException
        If a version or its run's artifacts do not exist.
    ReportMissing
        If ``ks`` or ``decide_k`` is not given and the challenger's run holds no report.
    """
    ours, ours_info = evaluated_model(client, name, challenger, settings)
    if ks is None or decide_k is None:
        report = read_logged_report(ours_info.run_id, settings)
        ks = ks if ks is not None else tuple(at.k for at in report.precision)
        decide_k = decide_k if decide_k is not None else report.headline_k
    theirs, theirs_info = evaluated_model(client, name, champion, settings)
    holdout, population = _frames(ours_info.run_id, settings)
    starts = [pd.Timestamp(s) for s in (ours_info.holdout_from, theirs_info.holdout_from) if s]
    visits_from = max(starts) if starts else pd.Timestamp(holdout["inspected_at"].min())
    dates = pd.to_datetime(holdout["inspected_at"])
    random_visits = holdout.loc[(holdout["reason"] == RANDOM_REASON) & (dates >= visits_from)]
    others = population.loc[~population.index.isin(random_visits["address_id"])]
    n = len(others) + len(random_visits)
    if n == 0:
        raise ValueError("the challenger's logged population is empty")

    def scores(model: RiskModel) -> np.ndarray:
        return np.concatenate([model.raw_score(others), model.raw_score(random_visits)])

    mask = np.concatenate([np.zeros(len(others), bool), np.ones(len(random_visits), bool)])
    labels = np.concatenate(
        [np.full(len(others), np.nan), random_visits["label"].to_numpy(dtype=float)]
    )
    shown = tuple(k for k in ks if k <= n)
    ours_scores, theirs_scores = scores(ours), scores(theirs)
    comparison = paired_precision_at_k(
        ours_scores, theirs_scores, mask, labels, shown, decide_k=min(decide_k, n), seed=seed
    )
    k = comparison.decision.k
    design = (
        design_comparison(store, name, ours_info.version, theirs_info.version, ks, decide_k)
        if store is not None
        else None
    )
    return VersionComparison(
        ours_info,
        theirs_info,
        str(visits_from.date()),
        comparison,
        honest_precision_at_k(ours_scores, mask, labels, k, min_random_visits=MIN_VISITS),
        honest_precision_at_k(theirs_scores, mask, labels, k, min_random_visits=MIN_VISITS),
        design,
    )


def paired_verdict(result: VersionComparison, tolerance: float = 0.0) -> tuple[bool, str]:
    """Promotion's check: refuse only when the challenger is worse beyond the interval.

    The challenger passes unless the upper end of the paired interval of
    (challenger - champion) at the deciding k lies below ``-tolerance``. When no top
    holds enough random visits for either model, the two cannot be compared and the
    challenger is refused: there is no evidence it is not worse.

    Returns
    -------
    (bool, str)
        Whether the challenger may be promoted on this check, and why (one sentence,
        naming the k decided on and the visits).
    """
    design = result.design
    if design is not None and design.estimable:
        diff = design.decision
        assert diff is not None  # estimable
        on = (
            f"(method: {DESIGN_METHOD}) on the {design.n_visits} visits of the plan of run "
            f"{design.plan_run_id} ({design.as_of}), both versions' rankings of that date "
            f"(challenger v{result.challenger.version}, champion v{result.champion.version})"
        )
        if diff.high < -tolerance:
            return False, (
                f"challenger is worse than champion beyond the design-based paired interval: "
                f"{design.describe()} {on}"
                + (f", by more than the tolerance {tolerance:g}" if tolerance else "")
            )
        return True, (
            f"challenger is not worse than champion beyond the design-based paired interval: "
            f"{design.describe()} {on}"
        )
    fallback = (
        ""
        if design is None
        else f"the plan of run {design.plan_run_id} gives no estimate ({design.describe()}); "
    )
    c = result.comparison
    d = c.decision
    on = (
        f"(method: {BOOTSTRAP_METHOD}) "
        f"on {c.n_visits} random-sample visits of version {result.challenger.version}'s "
        f"holdout from {result.visits_from} (challenger v{result.challenger.version}, champion "
        f"v{result.champion.version}: {result.champion.model})"
    )
    if not d.estimable:
        return False, (
            f"{fallback}challenger and champion cannot be compared {on}: no top holds "
            "enough random visits of both"
        )
    where = (
        fallback
        if d.k == c.decide_k
        else f"{fallback} precision@{c.decide_k} is not estimable, so decided at the smallest "
        "top with enough random visits in both lists;"
    )
    if d.high < -tolerance:
        return False, (
            f"{where} challenger is worse than champion beyond the paired interval: "
            f"{d.describe()} {on}"
            + (f", by more than the tolerance {tolerance:g}" if tolerance else "")
        ).strip()
    return True, (
        f"{where} challenger is not worse than champion beyond the paired interval: "
        f"{d.describe()} {on}"
    ).strip()
