"""The fairness frontier: models along a false-positive-rate-parity constraint, chosen in the open.

No single mitigation is right for every municipality: how much precision to give
up for how much less unequal treatment of households without a violation is a
policy choice. :func:`fit_frontier` lays the choices out. It trains fairlearn's
:class:`~fairlearn.reductions.GridSearch` with a
:class:`~fairlearn.reductions.FalsePositiveRateParity` constraint on the protected
attribute :data:`FRONTIER_ATTRIBUTE`: each grid point is a LightGBM model fitted on
relabelled, reweighted training visits for one Lagrange multiplier of the constraint,
from "ignore the constraint" to "push hard on it" in both directions.

* The protected attribute is used **in training only**: it sets the weights and
  labels GridSearch fits with. Every point is a plain
  :class:`~stratum_ml.model.risk_model.RiskModel` on the approved features; scoring
  never reads the attribute.
* Each point is fitted on the split's training visits with the split model's number
  of rounds, calibrated on the tune visits, and measured on the holdout exactly like
  the registered model (``train._assess``: honest precision@k from random-sample
  visits, the fairness gate's false-positive-rate ratios with intervals), so that the
  rows of the frontier table are comparable with each other and with the model.
* Where a visit plan with visits exists for a scoring date (a run of ``stratum run
  --capacity``, answered by ``feedback import``), every row -- each point, the model and
  current practice -- is re-estimated from that plan's visits by Horvitz-Thompson
  (:func:`design_row`, :mod:`stratum_ml.evaluation.design`): each ranks the run's
  population as of the run's date, and precision@k, each group's false-positive rate
  and their ratio are estimated with intervals (non-response widens them into bounds;
  "not estimable" gives the worst and best case). Design-based estimates need no model
  of who was visited, unlike the holdout's random-sample visits, which are too few in
  a top k. The columns ``precision_method``, ``fpr_ratio_method`` and ``estimate_source``
  say which estimate a row holds; without such a plan the holdout estimates stay, labelled
  :data:`HOLDOUT_METHOD`, and with one they are kept beside as ``holdout_*``.
* :func:`innocent_per_visits` counts, per group, the households without a violation
  among the visits a ranking would make, estimated from the holdout visits (the
  labels the gate's rates rest on) and scaled to ``per`` visits, for the model and
  for current practice.

What the table does not do is choose. On the measured 60k municipality GridSearch
reached the gate's band only at a multiplier that could not be chosen from policy
visits, and it did so by selecting more innocent households of the other group
rather than fewer of the first: the per-group counts beside the ratio show which.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from fairlearn.reductions import FalsePositiveRateParity, GridSearch
from matplotlib.figure import Figure
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin

from stratum_ml.evaluation.design import fpr_ratio, group_fpr, precision_at_k
from stratum_ml.model.calibration import Calibrator
from stratum_ml.model.risk_model import RiskModel

if TYPE_CHECKING:
    from stratum_ml.runs.estimates import PlanVisits

__all__ = [
    "FRONTIER_ATTRIBUTE",
    "HOLDOUT_METHOD",
    "FrontierPoint",
    "design_row",
    "fit_frontier",
    "frontier_plot",
    "frontier_point_artifact",
    "innocent_per_visits",
]

#: where a training run logs its frontier points (``frontier/point_<N>/``)
FRONTIER_ARTIFACT = "frontier"


def frontier_point_artifact(point: int) -> str:
    """The run artifact folder of frontier point ``point``: its model, report and reference."""
    return f"{FRONTIER_ARTIFACT}/point_{int(point)}"


#: the protected attribute the frontier's constraint equalises false-positive rates over
FRONTIER_ATTRIBUTE = "any_resident_born_outside_europe"
#: the method of a row estimated from the holdout (no visit plan with visits)
HOLDOUT_METHOD = "random_sample_holdout"
#: the estimate columns a design-based row replaces (the holdout's kept as ``holdout_<name>``)
ESTIMATE_COLUMNS = (
    "precision",
    "precision_low",
    "precision_high",
    "fpr_ratio",
    "fpr_ratio_low",
    "fpr_ratio_high",
)


class _Trees(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """LightGBM with a fixed number of rounds on a float matrix: GridSearch's estimator."""

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        n_rounds: int = 100,
        categorical: tuple[int, ...] = (),
    ) -> None:
        self.params = params
        self.n_rounds = n_rounds
        self.categorical = categorical

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _Trees:
        data = lgb.Dataset(
            np.asarray(X, dtype=float),
            label=np.asarray(y, dtype=float),
            weight=None if sample_weight is None else np.asarray(sample_weight, dtype=float),
            categorical_feature=list(self.categorical),
            free_raw_data=True,
        )
        self.booster_ = lgb.train(dict(self.params or {}), data, num_boost_round=self.n_rounds)
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X: Any) -> NDArray[np.int64]:
        raw = self.booster_.predict(np.asarray(X, dtype=float), raw_score=True)
        return (np.asarray(raw) >= 0).astype(np.int64)


@dataclass(frozen=True)
class FrontierPoint:
    """One model of the frontier.

    Attributes
    ----------
    point : int
        Its number (0 ..), in increasing order of ``multiplier``.
    multiplier : float
        The Lagrange multiplier of the constraint on the first group's (in sorted
        order) false-positive rate (0: no pressure; the sign gives the direction).
    model : RiskModel
        The point's model on the approved features (no protected attribute).
    """

    point: int
    multiplier: float
    model: RiskModel


def _labels(groups: pd.Series) -> NDArray[np.str_]:
    """Group labels as strings, a missing value as the group ``missing``."""
    return np.asarray(
        groups.astype("object").where(groups.notna(), "missing").astype(str), dtype=str
    )


def _multiplier(lambdas: pd.Series) -> float:
    """The net multiplier on the first group's constraint ('+' minus '-').

    With two groups GridSearch's grid moves along this one number; its sign says
    whether the first group's false-positive rate is pushed down or up.
    """
    signs = lambdas.index.get_level_values(0)
    groups = lambdas.index.get_level_values(-1)
    on_first = groups == groups[0]
    values = lambdas.to_numpy(dtype=float)
    return float(np.sum(np.where(signs[on_first] == "+", 1.0, -1.0) * values[on_first]))


def fit_frontier(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    groups_train: pd.Series,
    X_tune: pd.DataFrame,
    y_tune: pd.Series,
    like: RiskModel,
    *,
    grid_size: int,
) -> list[FrontierPoint]:
    """Fit the GridSearch frontier with a false-positive-rate-parity constraint.

    Parameters
    ----------
    X_train, y_train : pandas.DataFrame, pandas.Series
        The split's training visits: features (``like``'s columns) and labels.
    groups_train : pandas.Series
        The protected attribute of each training visit (missing: its own group).
        Used to fit, never stored in a model.
    X_tune, y_tune : pandas.DataFrame, pandas.Series
        The tune visits each point's calibrator is fitted on.
    like : RiskModel
        The split model: columns, categories, LightGBM settings and number of rounds.
    grid_size : int
        Points of the grid (at least 2).

    Returns
    -------
    list of FrontierPoint
        In increasing order of the multiplier.

    Raises
    ------
    ValueError
        If ``grid_size`` is below 2 or the attribute has a single group.
    """
    if grid_size < 2:
        raise ValueError(f"a frontier needs at least 2 grid points, not {grid_size}")
    sensitive = pd.Series(_labels(groups_train), index=groups_train.index)
    if sensitive.nunique() < 2:
        raise ValueError(f"{groups_train.name or 'the attribute'} has one group only")
    names = like.feature_names_in_
    estimator = _Trees(
        params=like.lightgbm_params(),
        n_rounds=like.best_iteration_,
        categorical=tuple(names.index(c) for c in like.categories_),
    )
    search = GridSearch(estimator, constraints=FalsePositiveRateParity(), grid_size=grid_size)
    with warnings.catch_warnings():  # fairlearn 0.15's own use of pandas, not ours
        warnings.filterwarnings("ignore", message="Setting a value on a Series via .at")
        warnings.filterwarnings("ignore", message="Setting an item of incompatible dtype")
        search.fit(
            like.matrix(X_train), np.asarray(y_train, dtype=int), sensitive_features=sensitive
        )
    tune = like.matrix(X_tune)
    points = []
    for column, predictor in enumerate(search.predictors_):
        booster = predictor.booster_
        raw = np.asarray(booster.predict(tune, raw_score=True))
        calibrator = Calibrator.fit(raw, np.asarray(y_tune, dtype=float), None, like.calibration)
        model = RiskModel.from_booster(
            booster, like=like, n_rounds=like.best_iteration_, calibrator=calibrator
        )
        points.append((_multiplier(search.lambda_vecs_.iloc[:, column]), model))
    points.sort(key=lambda item: item[0])
    return [FrontierPoint(i, m, model) for i, (m, model) in enumerate(points)]


def innocent_per_visits(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: pd.Series,
    k: int,
    *,
    per: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """Households without a violation per group among ``per`` visits to a ranking's top ``k``.

    For each group: the ranking's top ``k`` holds ``n_g`` of its addresses; of the
    visited ones among them (``labels`` not NaN), the share without a violation is
    ``r_g``; the estimate is ``n_g * r_g * per / k`` (NaN where the group has no
    visited address in the top ``k``). The labels are the holdout visits the fairness
    gate's rates rest on.

    Parameters
    ----------
    scores : numpy.ndarray
        Scores of the ranked rows (population with holdout visits placed).
    labels : numpy.ndarray
        1 = violation, 0 = none, NaN = not visited.
    groups : pandas.Series
        Group of each row, by position.
    k : int
        The top that would be visited.
    per : int, default 500
        Visits to scale to.
    seed : int, default 0
        Tie-break of the top ``k``.

    Returns
    -------
    dict of str to float
    """
    from stratum_ml.evaluation.metrics import top_k_mask

    selected = top_k_mask(scores, min(k, len(scores)), seed=seed)
    frame = pd.DataFrame(
        {
            "group": groups.astype("object")
            .where(groups.notna(), "missing")
            .astype(str)
            .to_numpy(),
            "selected": selected,
            "innocent": 1.0 - labels,
        }
    )
    top = frame.loc[frame["selected"]]
    out = {}
    for group, rows in top.groupby("group", sort=True):
        share = rows["innocent"].mean()  # NaN (unvisited) rows are skipped
        out[str(group)] = float(len(rows) * share * per / k) if not np.isnan(share) else np.nan
    return out


def design_row(
    scores: np.ndarray,
    plan: PlanVisits,
    inside: np.ndarray,
    outside: np.ndarray,
    k: int,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Design-based estimates of one ranking's top ``k`` from a plan's visits.

    Parameters
    ----------
    scores : numpy.ndarray
        The ranking's scores of the plan run's population, in the order of
        ``plan.address_ids`` (higher first).
    plan : PlanVisits
        The plan, its visits and its population.
    inside, outside : numpy.ndarray of bool
        The group (attribute ``True``) and the reference (``False``); an address of
        unknown group is in neither.
    k : int
        The list size.
    seed : int, default 0
        Tie-break of the top ``k``.

    Returns
    -------
    dict
        ``precision``, ``precision_low``, ``precision_high``, ``precision_method``,
        ``precision_n_visits``; ``fpr_ratio`` (group over reference) with ``_low``,
        ``_high`` and ``_method``; ``fpr_True`` and ``fpr_False`` (each group's
        false-positive rate) with ``_low``, ``_high``; and ``estimate_source``. A
        quantity that is not estimable has a NaN estimate and its worst/best-case
        bounds as ``_low``/``_high``.
    """
    from stratum_ml.evaluation.metrics import top_k_mask

    top = top_k_mask(scores, min(k, len(scores)), seed=seed)
    design = plan.design
    precision = precision_at_k(design, top, label=f"precision@{k}")
    ratio = fpr_ratio(design, top, inside, outside)
    row: dict[str, Any] = {
        "estimate_source": plan.describe(),
        "precision": precision.estimate,
        "precision_low": precision.low,
        "precision_high": precision.high,
        "precision_method": precision.method,
        "precision_n_visits": precision.n_visits,
        "fpr_ratio": ratio.estimate,
        "fpr_ratio_low": ratio.low,
        "fpr_ratio_high": ratio.high,
        "fpr_ratio_method": ratio.method,
    }
    for name, group in (("True", inside), ("False", outside)):
        rate = group_fpr(design, top, group)
        row |= {f"fpr_{name}": rate.estimate, f"fpr_{name}_low": rate.low}
        row[f"fpr_{name}_high"] = rate.high
    return row


def frontier_plot(table: pd.DataFrame, *, k: int, attribute: str) -> Figure:
    """Precision@k against the false-positive-rate ratio, one dot per point, model marked."""
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    points = table.loc[table["kind"] == "frontier"]
    ax.errorbar(
        points["fpr_ratio"],
        points["precision"],
        yerr=[
            (points["precision"] - points["precision_low"]).clip(lower=0),
            (points["precision_high"] - points["precision"]).clip(lower=0),
        ],
        fmt="o",
        color="tab:blue",
        label="GridSearch (FPR parity)",
    )
    for _, row in points.iterrows():
        ax.annotate(str(int(row["point"])), (row["fpr_ratio"], row["precision"]), fontsize=8)
    model = table.loc[table["kind"] == "model"]
    ax.plot(model["fpr_ratio"], model["precision"], "s", color="tab:red", label="registered")
    ax.axvspan(0.8, 1.25, color="tab:green", alpha=0.1, label="gate band")
    ax.set_xlabel(f"false-positive-rate ratio ({attribute})")
    methods = set(table.get("precision_method", pd.Series(dtype=object)).dropna())
    how = (
        "Horvitz-Thompson from a visit plan"
        if methods and not methods <= {HOLDOUT_METHOD}
        else "holdout random-sample visits"
    )
    ax.set_ylabel(f"precision@{k} ({how})")
    ax.set_title("Fairness frontier: precision against unequal treatment")
    source = table.get("estimate_source", pd.Series(dtype=object)).dropna()
    if len(source):
        figure.text(0.01, 0.01, str(source.iloc[0])[:110], fontsize=6)
    ax.legend(fontsize=8)
    return figure
