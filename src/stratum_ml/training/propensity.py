"""Who got visited: a visit-propensity model and inverse-propensity weights.

Only visited addresses have labels, and earlier policy chose them (after reports,
in neighbourhood projects). A model fitted on visits learns "what a visited
address with a violation looks like", which is not "what an address with a
violation looks like". Inverse-propensity weighting (IPW) reweights each visit by
``1 / P(visited | features)`` so that the weighted visits resemble the whole
population (under the assumption that the features capture why addresses were
visited: no unmeasured selection).

``P(visited | x)`` is estimated case-control style: the visits (cases) against
unvisited *control* queries, random residential addresses as of the same dates,
with out-of-fold predictions for the visits so a visit's own row does not shrink
its weight. Only relative weights matter, so the sampling ratio cancels.
Weights are normalised to mean 1 and clipped at ``clip`` to bound variance; the
effective sample size is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from stratum_ml.features.asof import make_queries
from stratum_ml.features.build import build_features
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.features.population import dwelling_ids
from stratum_ml.sources.tables import SourceTables


@dataclass(frozen=True)
class PropensityResult:
    """Weights for the visits, and how predictable visiting was."""

    weights: pd.Series  # by inspection_id, mean 1
    auc: float  # out-of-fold AUC of visits vs controls
    effective_sample_size: float
    n_controls: int
    clipped: int

    def summary(self) -> dict[str, float]:
        """Numbers for the run's metrics."""
        w = self.weights.to_numpy()
        return {
            "propensity_auc": self.auc,
            "ipw_effective_sample_size": self.effective_sample_size,
            "ipw_max_weight": float(w.max()),
            "ipw_clipped": float(self.clipped),
            "propensity_controls": float(self.n_controls),
        }


def _codes(X: pd.DataFrame) -> np.ndarray:
    cols = []
    for c in X.columns:
        col = X[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype("float64")
            cols.append(np.where(codes < 0, np.nan, codes))
        else:
            cols.append(col.to_numpy(dtype="float64"))
    return np.column_stack(cols)


def control_queries(
    tables: SourceTables, visits: pd.DataFrame, per_visit: int, seed: int
) -> pd.DataFrame:
    """Random dwellings as of the visit dates (``per_visit`` per visit)."""
    rng = np.random.default_rng(seed)
    residential = dwelling_ids(tables.addresses).to_numpy()
    dates = np.repeat(visits["inspected_at"].to_numpy(), per_visit)
    picked = rng.choice(residential, size=len(dates), replace=True)
    index = pd.Index([f"control-{i}" for i in range(len(dates))], name="inspection_id")
    return make_queries(picked, pd.Series(dates), index=index)


def visit_propensity(
    tables: SourceTables,
    visits: pd.DataFrame,
    X_visits: pd.DataFrame,
    feature_set: FeatureSet,
    *,
    controls_per_visit: int = 2,
    clip: float = 20.0,
    seed: int = 0,
    n_folds: int = 3,
    n_jobs: int = 1,
) -> PropensityResult:
    """Inverse visit-propensity weights for ``visits`` (features ``X_visits``)."""
    controls = control_queries(tables, visits, controls_per_visit, seed)
    X_controls = build_features(
        tables, controls, features=list(X_visits.columns), params=feature_set.params
    )
    X = pd.concat([X_visits, X_controls])
    for c in X_visits.columns:  # concat of two categoricals with equal categories stays one
        if isinstance(X_visits[c].dtype, pd.CategoricalDtype):
            X[c] = pd.Categorical(X[c], categories=X_visits[c].cat.categories)
    matrix = _codes(X)
    label = np.r_[np.ones(len(X_visits)), np.zeros(len(X_controls))]
    oof = np.zeros(len(label))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.05,
        "min_child_samples": 20,
        "num_threads": n_jobs,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }
    for fit_idx, pred_idx in folds.split(matrix, label):
        booster = lgb.train(params, lgb.Dataset(matrix[fit_idx], label[fit_idx]), 200)
        oof[pred_idx] = booster.predict(matrix[pred_idx], raw_score=True)
    auc = float(roc_auc_score(label, oof))
    odds = np.exp(oof[: len(X_visits)])  # P(visit|x) is proportional to these odds
    raw = 1.0 / odds
    weights = raw / raw.mean()
    clipped = int((weights > clip).sum())
    weights = np.minimum(weights, clip)
    weights = weights / weights.mean()
    ess = float(weights.sum() ** 2 / (weights**2).sum())
    return PropensityResult(
        weights=pd.Series(weights, index=X_visits.index, name="ipw"),
        auc=auc,
        effective_sample_size=ess,
        n_controls=len(X_controls),
        clipped=clipped,
    )
