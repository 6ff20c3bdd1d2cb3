"""The final fit: after the time-split evaluation, refit on every labelled visit.

The time split (:mod:`stratum_ml.training.split`) exists to *measure* a model:
its trees never see the holdout, so the holdout's random-sample visits give an
honest precision@k. But the holdout holds the newest visits, and with them every
outcome recorded through the service since the export: a model registered from
the split would never learn from them. So, once the split model is measured,
:func:`refit_on_all_visits` fits the model that is registered on **all** labelled
visits up to the training cut-off (the last labelled visit), with the number of
boosting rounds and the probability calibrator chosen by cross-fitting:

1. the visits are cut into ``K`` folds **grouped by address** (every visit of an
   address in one fold);
2. for each fold, a model is fitted on the other folds with early stopping on the
   fold; its best iteration is recorded and its raw scores on the fold are the
   fold's out-of-fold scores;
3. the final number of rounds is the mean of the folds' best iterations, scaled by
   ``K / (K - 1)`` (each fold model saw ``(K - 1) / K`` of the rows; more rows
   support proportionally more rounds at the same learning rate);
4. the calibrator (the run config's method) is fitted on the out-of-fold raw
   scores, so no visit's probability is calibrated on a score of a tree that saw it;
5. the final trees are fitted on every visit with that number of rounds.

Why folds grouped by address, not folds over time: the features of a visit include
the address's own earlier visits and reports, so visits of one address are strongly
alike; a fold that trains on one visit of an address and validates on another
rewards memorising addresses and stops too late. Grouping keeps each validation
fold's addresses unseen. Folds over time answer a different question -- how the
model does on *later* visits -- which the time split has already answered and
reported; here the aim is the best choice of rounds and calibration for a model
fitted on the whole period, and every visit should serve once as validation.
The early stopping makes the out-of-fold scores slightly optimistic at the chosen
round; with early stopping on the log loss this bias is small next to the gain of
calibrating on every visit instead of the tune period's few hundred.

The reported evaluation remains that of the split model: the final model is fitted
on the holdout visits too, so there is nothing left to measure it on honestly.

**Plan visits weighted by their inverse inclusion probability** (run config
``plan_visit_weighting: inverse_inclusion``; off by default, see below). A visit that
answers a visit plan (:mod:`stratum_ml.runs.plan`) was drawn with a known inclusion
probability ``pi_i``: 1 for a top pick, ``n_h / N_h`` for a pick of a stratum of
``N_h`` dwellings of which ``n_h`` were drawn. Weighting its loss by ``w_i = 1 / pi_i``
makes the plan's part of the training loss a Horvitz-Thompson estimate of the loss
over the plan's *whole population* (every dwelling the run ranked): with ``S`` the
random set of picks and ``I_i = [i in S]``, ``E[I_i] = pi_i``, so

    E[ sum_{i in S} w_i l_i ] = sum_i pi_i * l_i / pi_i = sum_i l_i,

for any per-dwelling loss ``l_i`` fixed before the draw (the loss of a given model
at the dwelling's outcome on the run's date). The population loss is what a model
that ranks *everyone* should minimise; unweighted, the plan's visits stand for the
top of the champion's list far more than for the rest, so the refit learns most
about the dwellings the champion already ranks high -- the model feeding its own
bias. The cost is variance: an exploration pick of the population stratum may
weigh hundreds of top picks, so a handful of visits moves the fit (the estimate is
unbiased but noisy), and gradient boosting with early stopping on a few heavy rows
overfits them. Only plan visits are so weighted: visits chosen by policy or by a
report (``visit_outcomes`` without a plan pick, and the source folder's
inspections) keep weight 1 (or the IPW weight of ``weighting``) and are *not*
unbiased for anything -- who was visited was chosen on things the data does not
fully hold -- so the weighted loss as a whole is unbiased for the population loss
only when every visit is a plan visit. ``bench/refit_weighting.py`` measures the
true precision@500 with and without the weights over monthly cycles on generated
towns (``bench/results/refit_weighting.md``); the default follows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from stratum_ml.model.calibration import Calibrator
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.training.config import RunConfig

__all__ = [
    "DEFAULT_FOLDS",
    "FinalFit",
    "plan_weighting_sentence",
    "plan_weights",
    "refit_on_all_visits",
]

#: folds of the cross-fitting
DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class FinalFit:
    """The registered model fitted on every labelled visit, and what it was fitted on.

    Attributes
    ----------
    model : RiskModel
        The final model (its ``metadata_`` is set by the caller).
    n_rounds : int
        Boosting rounds of the final fit, chosen by cross-fitting.
    fold_rounds : tuple of int
        Each fold model's best iteration.
    n_folds : int
    n_visits, n_violations : int
        Rows of the final fit, and how many of them found a violation.
    fit_from, fit_until : str
        First and last visit date of the final fit (ISO dates).
    visits_by_part : dict of str to int
        Rows by part of the time split (``train``, ``tune``, ``holdout``): the
        holdout's rows are the ones the split model never learnt from.
    visits_by_reason : dict of str to int
        Rows by visit reason.
    oof_log_loss : float
        Log loss of the calibrated out-of-fold scores.
    plan_weighting : str
        ``none`` or ``inverse_inclusion`` (the run config's ``plan_visit_weighting``).
    n_plan_visits : int
        Rows that answer a visit plan (with an inclusion probability).
    max_plan_weight : float
        The largest inverse inclusion probability applied (1.0 when none was).
    """

    model: RiskModel
    n_rounds: int
    fold_rounds: tuple[int, ...]
    n_folds: int
    n_visits: int
    n_violations: int
    fit_from: str
    fit_until: str
    visits_by_part: dict[str, int] = field(default_factory=dict)
    visits_by_reason: dict[str, int] = field(default_factory=dict)
    oof_log_loss: float = float("nan")
    plan_weighting: str = "none"
    n_plan_visits: int = 0
    max_plan_weight: float = 1.0

    def to_params(self) -> dict[str, Any]:
        """Flat MLflow params (``final_fit.*``): rows, dates, rounds."""
        params: dict[str, Any] = {
            "final_fit.n_visits": self.n_visits,
            "final_fit.n_violations": self.n_violations,
            "final_fit.from": self.fit_from,
            "final_fit.until": self.fit_until,
            "final_fit.n_rounds": self.n_rounds,
            "final_fit.fold_rounds": ",".join(str(r) for r in self.fold_rounds),
            "final_fit.n_folds": self.n_folds,
            "final_fit.folds": "grouped by address",
            "final_fit.plan_weighting": self.plan_weighting,
            "final_fit.n_plan_visits": self.n_plan_visits,
            "final_fit.max_plan_weight": self.max_plan_weight,
        }
        params.update({f"final_fit.n_{part}": n for part, n in self.visits_by_part.items()})
        params.update(
            {f"final_fit.reason.{reason}": n for reason, n in self.visits_by_reason.items()}
        )
        return params

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, for JSON and the model card."""
        return {
            "n_visits": self.n_visits,
            "n_violations": self.n_violations,
            "fit_from": self.fit_from,
            "fit_until": self.fit_until,
            "n_rounds": self.n_rounds,
            "fold_rounds": list(self.fold_rounds),
            "n_folds": self.n_folds,
            "folds": "grouped by address",
            "visits_by_part": dict(self.visits_by_part),
            "visits_by_reason": dict(self.visits_by_reason),
            "oof_log_loss": self.oof_log_loss,
            "plan_weighting": self.plan_weighting,
            "n_plan_visits": self.n_plan_visits,
            "max_plan_weight": self.max_plan_weight,
        }


def _folds(groups: np.ndarray, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError("the final fit's cross-fitting needs visits at two addresses at least")
    splitter = GroupKFold(n_splits=min(n_folds, n_groups))
    return list(splitter.split(np.zeros(len(groups)), groups=groups))


def _log_loss(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.average(y * np.log(p) + (1 - y) * np.log(1 - p), weights=w))


def plan_weighting_sentence(final: FinalFit) -> str:
    """The model card's words on how the final fit weighed plan visits, and why (English)."""
    share = f"{final.n_plan_visits} of its {final.n_visits} visits answered a visit plan"
    if final.plan_weighting == "inverse_inclusion":
        return (
            f"{share} and were weighted by 1 / their inclusion probability (largest weight "
            f"{final.max_plan_weight:.0f}). Why that is unbiased: a plan draws dwelling i with "
            "a known probability pi_i, so the expected weighted loss of its visits, "
            "E[sum over the drawn i of l_i / pi_i] = sum over all i of pi_i l_i / pi_i, is the "
            "loss over the plan's whole population (Horvitz-Thompson), whatever the model "
            "ranked first. What it costs: variance -- a pick drawn with probability 1/500 "
            "weighs 500 top picks, so a few visits move the fit. Visits chosen by policy or "
            "by a report keep weight 1 and are not unbiased for anything: who was visited "
            "was chosen on things the data does not fully hold."
        )
    return (
        f"{share}; every visit has weight 1 (plan_visit_weighting: none). Weighting plan "
        "visits by 1 / their inclusion probability would make their loss unbiased for the "
        "loss over each plan's whole population (Horvitz-Thompson), but on generated towns "
        "its variance cost more than its bias saved (bench/results/refit_weighting.md); "
        "visits chosen by policy or by a report are not unbiased either way."
    )


def plan_weights(visits: pd.DataFrame, weighting: str) -> np.ndarray:
    """Per visit: ``1 / inclusion_probability`` for plan visits under ``inverse_inclusion``.

    Parameters
    ----------
    visits : pandas.DataFrame
        Optionally with ``inclusion_probability`` (in (0, 1] for a visit that answers
        a plan's pick, missing otherwise).
    weighting : {"none", "inverse_inclusion"}

    Returns
    -------
    numpy.ndarray
        1 for every visit under ``none`` and for every visit outside a plan.

    Raises
    ------
    ValueError
        If an inclusion probability lies outside (0, 1].
    """
    if weighting not in ("none", "inverse_inclusion"):
        raise ValueError(f"plan_visit_weighting must be none or inverse_inclusion: {weighting!r}")
    ones = np.ones(len(visits))
    if "inclusion_probability" not in visits:
        return ones
    pi = pd.to_numeric(visits["inclusion_probability"], errors="coerce").to_numpy(dtype=float)
    known = ~np.isnan(pi)
    if ((pi[known] <= 0) | (pi[known] > 1)).any():
        raise ValueError("a plan visit's inclusion probability lies outside (0, 1]")
    if weighting == "none":
        return ones
    return np.where(known, 1.0 / np.where(known, pi, 1.0), 1.0)


def refit_on_all_visits(
    X: pd.DataFrame,
    y: pd.Series,
    visits: pd.DataFrame,
    config: RunConfig,
    *,
    sample_weight: np.ndarray | None = None,
    parts: pd.Series | None = None,
    n_folds: int = DEFAULT_FOLDS,
) -> FinalFit:
    """Fit the model to register on every labelled visit, cross-fitting rounds and calibrator.

    Parameters
    ----------
    X : pandas.DataFrame
        Features of every labelled visit up to the cut-off (the model's columns only).
    y : pandas.Series
        Labels (1 = violation), aligned with ``X``.
    visits : pandas.DataFrame
        Visit facts aligned with ``X``: ``address_id`` (the folds' groups),
        ``inspected_at`` and ``reason``; optionally ``inclusion_probability`` (a plan
        visit's, missing for the others), weighted by :func:`plan_weights` under the
        config's ``plan_visit_weighting``.
    config : RunConfig
        LightGBM settings, calibration method and seed.
    sample_weight : numpy.ndarray, optional
        Weight per row (the same the split model was trained with).
    parts : pandas.Series, optional
        The time-split part of each row (``train``/``tune``/``holdout``), only counted.
    n_folds : int, default 5
        Folds of the cross-fitting (fewer when there are fewer addresses).

    Returns
    -------
    FinalFit

    Raises
    ------
    ValueError
        If the visits hold only one outcome, or a fold's validation visits do.
    """
    labels = y.to_numpy(dtype=float)
    if len(np.unique(labels)) < 2:
        raise ValueError("the final fit needs visits with and without a violation")
    weights = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight, float)
    by_plan = plan_weights(visits, config.plan_visit_weighting)
    weights = weights * by_plan
    n_plan = (
        int(visits["inclusion_probability"].notna().sum())
        if "inclusion_probability" in visits
        else 0
    )
    folds = _folds(visits["address_id"].astype(str).to_numpy(), n_folds)
    oof = np.full(len(labels), np.nan)
    rounds: list[int] = []
    for fit_rows, check_rows in folds:
        if len(np.unique(labels[check_rows])) < 2 or len(np.unique(labels[fit_rows])) < 2:
            raise ValueError(
                "a cross-fitting fold holds only one outcome; too few violations for the final fit"
            )
        fold = RiskModel(config.lightgbm, config.calibration, config.seed).fit(
            X.iloc[fit_rows],
            labels[fit_rows],
            X_tune=X.iloc[check_rows],
            y_tune=labels[check_rows],
            sample_weight=weights[fit_rows],
            tune_weight=weights[check_rows],
        )
        rounds.append(fold.best_iteration_)
        oof[check_rows] = fold.raw_score(X.iloc[check_rows])
    k = len(folds)
    n_rounds = max(1, math.ceil(float(np.mean(rounds)) * k / (k - 1)))
    calibrator = Calibrator.fit(oof, labels, weights, config.calibration)
    model = RiskModel(config.lightgbm, config.calibration, config.seed).fit_rounds(
        X, labels, n_rounds=n_rounds, calibrator=calibrator, sample_weight=weights
    )
    dates = pd.to_datetime(visits["inspected_at"])
    return FinalFit(
        model=model,
        n_rounds=n_rounds,
        fold_rounds=tuple(rounds),
        n_folds=k,
        n_visits=len(labels),
        n_violations=int(labels.sum()),
        fit_from=str(dates.min().date()),
        fit_until=str(dates.max().date()),
        visits_by_part=(
            {str(p): int(n) for p, n in parts.value_counts().sort_index().items()}
            if parts is not None
            else {}
        ),
        visits_by_reason={
            str(r): int(n)
            for r, n in visits["reason"].astype(str).value_counts().sort_index().items()
        },
        oof_log_loss=_log_loss(calibrator(oof), labels, weights),
        plan_weighting=config.plan_visit_weighting,
        n_plan_visits=n_plan,
        max_plan_weight=float(by_plan.max()) if len(by_plan) else 1.0,
    )
