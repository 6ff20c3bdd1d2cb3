"""The likely-violation-type model: fitted on typed violations, saved with the risk model."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from stratum_ml.config import Settings
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.registry import load_risk_model
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.model.store import client_for
from stratum_ml.model.violation_type import META_FILE, VIOLATION_TYPE_CLASSES
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.synthetic.generate import Municipality
from stratum_ml.training.config import RunConfig
from stratum_ml.training.dataset import TrainingSet
from stratum_ml.training.split import TimeSplit
from stratum_ml.training.tracking import log_training_run
from stratum_ml.training.train import train_model
from stratum_ml.training.violation_type import (
    MIN_CLASS_COUNT,
    fit_violation_types,
    grouped_types,
    violation_type_metrics,
)

CONFIG = RunConfig(lightgbm=LightGBMParams(n_jobs=1))


def _world(n: int = 3_000, seed: int = 0) -> tuple[RiskModel, TrainingSet, TimeSplit, pd.DataFrame]:
    """Visits whose type follows the features: water -> subletting, crowding -> overcrowding."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"I{i:06d}" for i in range(n)], name="inspection_id")
    X = pd.DataFrame(
        {
            "water": rng.normal(0, 1, n),
            "crowding": rng.normal(0, 1, n),
            "noise": rng.normal(0, 1, n),
            "tenure": pd.Categorical(rng.choice(["social_rent", "private_rent"], n)),
        },
        index=ids,
    )
    y = pd.Series((rng.random(n) < 0.5).astype("int64"), index=ids)
    kinds = np.where(
        X["water"] > 0.3,
        "illegal_subletting",
        np.where(X["crowding"] > 0.3, "overcrowding", "address_fraud"),
    )
    kinds = np.where(rng.random(n) < 0.1, "illegal_room_rental", kinds)  # grouped with subletting
    kinds[:5] = "exploitation"  # too rare: merged into other
    kinds[5:10] = "other"
    y.iloc[:10] = 1
    inspections = pd.DataFrame(
        {
            "inspection_id": ids,
            "outcome": np.where(y == 1, "violation", "no_violation"),
            "violation_type": pd.Categorical(np.where(y == 1, kinds, None)),
        }
    )
    order = np.arange(n)
    split = TimeSplit(
        train=order < 0.6 * n,
        tune=(order >= 0.6 * n) & (order < 0.8 * n),
        holdout=order >= 0.8 * n,
        tune_start=pd.Timestamp("2024-01-01"),
        holdout_start=pd.Timestamp("2025-01-01"),
    )
    model = RiskModel(CONFIG.lightgbm).fit(
        X[split.train], y[split.train], X_tune=X[split.tune], y_tune=y[split.tune]
    )
    visits = pd.DataFrame(index=ids)
    return model, TrainingSet(X, y, visits), split, inspections


@pytest.fixture(scope="module")
def fitted() -> tuple[RiskModel, TrainingSet, dict[str, pd.DataFrame]]:
    model, training, split, inspections = _world()
    tables = fit_violation_types(model, training, split, inspections, CONFIG)
    return model, training, tables


def test_types_are_grouped_and_only_violations_have_one() -> None:
    inspections = pd.DataFrame(
        {
            "inspection_id": ["A", "B", "C", "D"],
            "outcome": ["violation", "violation", "no_violation", "violation"],
            "violation_type": pd.Categorical(
                ["illegal_room_rental", "illegal_subletting", None, None]
            ),
        }
    )
    out = grouped_types(inspections, pd.Index(["D", "C", "B", "A"]))
    assert out.tolist()[2:] == ["subletting_or_room_rental", "subletting_or_room_rental"]
    assert out.iloc[:2].isna().all()


def test_the_type_model_learns_and_reports_held_out_numbers(
    fitted: tuple[RiskModel, TrainingSet, dict[str, pd.DataFrame]],
) -> None:
    model, _, tables = fitted
    assert model.violation_types_ is not None
    m = model.violation_types_.metrics_
    assert m["holdout_accuracy"] > m["holdout_majority_accuracy"] + 0.2
    assert m["merged_into_other"] == ["exploitation"]
    classes = tables["violation_type_classes"]
    assert classes["violation_type"].tolist() == [
        "address_fraud",
        "subletting_or_room_rental",
        "overcrowding",
        "other",
    ]
    assert (classes.loc[classes["violation_type"] != "other", "n_train"] >= MIN_CLASS_COUNT).all()
    confusion = tables["violation_type_confusion"]
    assert int(confusion.drop(columns="true_type").to_numpy().sum()) == m["n_holdout"]
    metrics = violation_type_metrics(model)
    assert metrics["violation_type_holdout_accuracy"] == pytest.approx(m["holdout_accuracy"])


def test_likely_type_is_indexed_like_x_with_shares(
    fitted: tuple[RiskModel, TrainingSet, dict[str, pd.DataFrame]],
) -> None:
    model, training, _ = fitted
    X = training.X.iloc[:200]
    likely = model.likely_violation_type(X)
    assert likely.index.equals(X.index)
    assert list(likely.columns) == ["violation_type", "violation_type_share"]
    assert set(likely["violation_type"]) <= set(VIOLATION_TYPE_CLASSES)
    share = likely["violation_type_share"]
    assert share.between(0, 1).all() and (share >= 1 / 4).all()  # the largest of four shares
    wet = X.loc[X["water"] > 1.5]
    assert (
        model.likely_violation_type(wet)["violation_type"] == "subletting_or_room_rental"
    ).mean() > 0.8


def test_saved_with_the_risk_model_and_older_models_load_without(
    fitted: tuple[RiskModel, TrainingSet, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    model, training, _ = fitted
    model.save(tmp_path / "m")
    loaded = RiskModel.load(tmp_path / "m")
    pd.testing.assert_frame_equal(
        loaded.likely_violation_type(training.X), model.likely_violation_type(training.X)
    )
    (tmp_path / "m" / META_FILE).unlink()  # a model saved before type models existed
    old = RiskModel.load(tmp_path / "m")
    assert old.violation_types_ is None
    with pytest.raises(ValueError, match="no violation type model"):
        old.likely_violation_type(training.X)
    assert violation_type_metrics(old) == {}


def test_too_few_typed_violations_fit_no_model() -> None:
    model, training, split, inspections = _world(n=120)
    assert fit_violation_types(model, training, split, inspections, CONFIG) == {}
    assert model.violation_types_ is None


@pytest.mark.slow
def test_a_registered_version_carries_the_type_model_and_the_scorer_shows_it(
    small_town: Municipality, tmp_path: Path
) -> None:
    outcome = train_model(
        small_town.sources, small_town.audit, RunConfig(evaluate_mitigations=False)
    )
    assert outcome.model.violation_types_ is not None
    assert "violation_type_classes" in outcome.tables
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STRATUM_HOME", str(tmp_path / "home"))
        mp.delenv("STRATUM_MLFLOW_URI", raising=False)
        tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        try:
            settings = Settings()
            registered = log_training_run(outcome, settings=settings, model_name="types")
            run = client_for(settings).get_run(registered.run_id)
            model, _ = load_risk_model("types", registered.version, settings)
        finally:
            mlflow.set_tracking_uri(tracking)
            mlflow.set_registry_uri(registry)
    accuracy = run.data.metrics["violation_type_holdout_accuracy"]
    assert accuracy == pytest.approx(outcome.model.violation_types_.metrics_["holdout_accuracy"])
    assert 0 <= accuracy <= 1
    assert model.violation_types_ is not None
    assert model.violation_types_.classes_ == outcome.model.violation_types_.classes_

    as_of = pd.Timestamp(outcome.periods["population_as_of"]).date()
    scorer = Scorer.from_sources(model, small_town.sources, as_of)
    top = scorer.priority_list(20)
    assert all(s.violation_type in VIOLATION_TYPE_CLASSES for s in top)
    assert all(s.violation_type_share is not None and 0 < s.violation_type_share <= 1 for s in top)
    assert top[0].to_dict()["violation_type"] == top[0].violation_type
    kind = top[0].violation_type
    assert kind is not None
    filtered = scorer.priority_list(5, violation_type=kind)
    assert filtered and all(s.violation_type == kind for s in filtered)
    # the scorer's types are the registered model's, and an older model shows none
    model.violation_types_ = None
    assert (
        Scorer.from_sources(model, small_town.sources, as_of).priority_list(1)[0].violation_type
        is None
    )
