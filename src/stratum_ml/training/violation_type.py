"""Train the likely-violation-type model beside the risk model, on the same split.

Among the labelled visits that found a violation with a recorded type, the type
(grouped into :data:`~stratum_ml.model.violation_type.VIOLATION_TYPE_CLASSES`) is
learned by a multiclass LightGBM on the risk model's own features and matrix:
fitted on the training period, stopped early on the tune period and judged on the
holdout period, which it never sees. A group with fewer than
:data:`MIN_CLASS_COUNT` training visits is merged into ``other``. The fitted model
is attached to the risk model (:attr:`RiskModel.violation_types_`), so it is saved,
logged and registered with it; its held-out accuracy (against always answering
the most common type) and confusion matrix go to the same MLflow run.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from stratum_ml.model.risk_model import RiskModel
from stratum_ml.model.violation_type import (
    VIOLATION_TYPE_CLASSES,
    VIOLATION_TYPE_GROUPS,
    ViolationTypeModel,
)
from stratum_ml.training.config import RunConfig
from stratum_ml.training.dataset import TrainingSet
from stratum_ml.training.split import TimeSplit

__all__ = [
    "MIN_CLASS_COUNT",
    "fit_violation_types",
    "grouped_types",
    "violation_type_metrics",
]

#: a type group with fewer training visits than this is merged into ``other``
MIN_CLASS_COUNT = 30
_ROUNDS = 400
_EARLY_STOPPING = 30


def grouped_types(inspections: pd.DataFrame, ids: pd.Index) -> pd.Series:
    """The grouped violation type of the visits ``ids`` (missing where none was recorded).

    Parameters
    ----------
    inspections
        The normalised ``inspections`` table.
    ids
        Inspection ids (the training set's index).

    Returns
    -------
    pandas.Series
        Indexed by ``ids``: a group of :data:`VIOLATION_TYPE_GROUPS`, or missing for a
        visit without a violation or without a recorded type.
    """
    found = inspections.loc[inspections["outcome"] == "violation"]
    types = found.set_index("inspection_id")["violation_type"].astype(object)
    grouped = types.map(VIOLATION_TYPE_GROUPS)
    return grouped.reindex(ids)


def _merge_small(train: pd.Series) -> tuple[list[str], list[str]]:
    """The classes kept (display order) and those merged into ``other``."""
    counts = train.value_counts()
    small = [
        c for c in VIOLATION_TYPE_CLASSES if c != "other" and 0 < counts.get(c, 0) < MIN_CLASS_COUNT
    ]
    kept = [
        c for c in VIOLATION_TYPE_CLASSES if c != "other" and counts.get(c, 0) >= MIN_CLASS_COUNT
    ]
    if small or counts.get("other", 0) > 0:
        kept.append("other")
    return kept, small


def _confusion(y_true: pd.Series, y_pred: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Counts of (true type, predicted type) on the holdout, one row per true type."""
    table = pd.crosstab(
        pd.Categorical(y_true.to_numpy(), categories=classes),
        pd.Categorical(y_pred, categories=classes),
        dropna=False,
    )
    table.index.name, table.columns.name = None, None
    return table.rename_axis("true_type").reset_index()


def fit_violation_types(
    model: RiskModel,
    training: TrainingSet,
    split: TimeSplit,
    inspections: pd.DataFrame,
    config: RunConfig,
) -> dict[str, pd.DataFrame]:
    """Fit the violation type model, attach it to ``model`` and return its tables.

    Parameters
    ----------
    model
        The fitted risk model; its features, matrix and categories are reused, and its
        :attr:`~RiskModel.violation_types_` is set (left ``None`` when fewer than two
        type groups have :data:`MIN_CLASS_COUNT` training visits).
    training
        Features of every labelled visit (index ``inspection_id``).
    split
        The risk model's time split of those visits.
    inspections
        The normalised ``inspections`` table (for the recorded types).
    config
        The run configuration (seed and LightGBM threads).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``violation_type_classes`` (per class: training, tune and holdout visits and
        what was merged into it) and ``violation_type_confusion`` (holdout counts, true
        type by predicted type); both empty when no model was fitted.
    """
    types = grouped_types(inspections, training.X.index)
    has_type = types.notna().to_numpy()
    parts = {
        name: has_type & np.asarray(getattr(split, name), dtype=bool)
        for name in ("train", "tune", "holdout")
    }
    kept, small = _merge_small(types[parts["train"]])
    model.violation_types_ = None
    if len(kept) < 2:
        return {}
    labels = types.where(~types.isin(small), "other")
    # a type unseen (or merged) in training counts as "other", or is left out without one
    labels = labels.where(labels.isin(kept) | labels.isna(), "other" if "other" in kept else None)
    parts = {name: mask & labels.notna().to_numpy() for name, mask in parts.items()}
    code = {c: i for i, c in enumerate(kept)}
    X = training.X[model.feature_names_in_]
    features = model.feature_names_in_

    def dataset(mask: np.ndarray, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            model.matrix(X.loc[mask]),
            label=labels[mask].map(code).to_numpy(dtype=float),
            feature_name=features,
            categorical_feature=[features.index(c) for c in model.categories_],
            reference=reference,
            free_raw_data=True,
        )

    train = dataset(parts["train"])
    params: dict[str, Any] = {
        "objective": "multiclass",
        "num_class": len(kept),
        "metric": "multi_logloss",
        "num_leaves": 15,
        "learning_rate": 0.05,
        "min_child_samples": 10,
        "lambda_l2": 1.0,
        "num_threads": config.lightgbm.n_jobs,
        "seed": config.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }
    if parts["tune"].any():
        booster = lgb.train(
            params,
            train,
            num_boost_round=_ROUNDS,
            valid_sets=[dataset(parts["tune"], train)],
            valid_names=["tune"],
            callbacks=[lgb.early_stopping(_EARLY_STOPPING, verbose=False)],
        )
        best = int(booster.best_iteration or booster.current_iteration())
    else:
        booster = lgb.train(params, train, num_boost_round=100)
        best = booster.current_iteration()
    type_model = ViolationTypeModel(kept, booster, best)
    held = parts["holdout"]
    y_true = labels[held]
    if held.any():
        predicted = type_model.likely(model.matrix(X.loc[held]), y_true.index)["violation_type"]
        accuracy = float((predicted.to_numpy() == y_true.to_numpy()).mean())
        majority = float(y_true.value_counts(normalize=True).iloc[0])
        confusion = _confusion(y_true, predicted.to_numpy(), kept)
    else:
        accuracy, majority, confusion = float("nan"), float("nan"), pd.DataFrame()
    counts = {name: labels[mask].value_counts() for name, mask in parts.items()}
    classes = pd.DataFrame(
        {
            "violation_type": kept,
            **{f"n_{name}": [int(counts[name].get(c, 0)) for c in kept] for name in counts},
            "merged_from": [", ".join(small) if c == "other" else "" for c in kept],
        }
    )
    type_model.metrics_ = {
        "holdout_accuracy": accuracy,
        "holdout_majority_accuracy": majority,
        "n_train": int(parts["train"].sum()),
        "n_tune": int(parts["tune"].sum()),
        "n_holdout": int(held.sum()),
        "min_class_count": MIN_CLASS_COUNT,
        "merged_into_other": small,
    }
    model.violation_types_ = type_model
    tables = {"violation_type_classes": classes}
    if len(confusion):
        tables["violation_type_confusion"] = confusion
    return tables


def violation_type_metrics(model: RiskModel) -> dict[str, float]:
    """The violation type model's held-out numbers as MLflow metrics (none without one).

    Keys: ``violation_type_holdout_accuracy``, ``violation_type_holdout_majority_accuracy``
    (always answering the most common type), ``violation_type_n_train`` and
    ``violation_type_n_holdout``; a number that could not be computed is left out.
    """
    if model.violation_types_ is None:
        return {}
    m = model.violation_types_.metrics_
    keys = ("holdout_accuracy", "holdout_majority_accuracy", "n_train", "n_holdout")
    out = {f"violation_type_{k}": float(m[k]) for k in keys if k in m}
    return {k: v for k, v in out.items() if np.isfinite(v)}
