"""The registry's read side on a real MLflow SQLite store (a version logged by hand)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag
from mlflow.exceptions import MlflowException

from stratum_ml.config import Settings
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.registry import (
    CHALLENGER,
    CHAMPION,
    RISK_MODEL_ARTIFACT,
    TAG_TRAINED_FROM,
    TAG_TRAINED_UNTIL,
    ModelVersionInfo,
    champion_info,
    honest_precision_tag,
    load_risk_model,
)
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.model.store import EXPERIMENT_NAME, client_for, configure_mlflow


def test_version_info_reads_aliases_and_the_training_period() -> None:
    mv = ModelVersion(
        name="m",
        version="3",
        creation_timestamp=0,
        run_id="r1",
        tags=[
            ModelVersionTag(TAG_TRAINED_FROM, "2021-01-01"),
            ModelVersionTag(TAG_TRAINED_UNTIL, "2023-08-31"),
        ],
        aliases=[CHAMPION],
    )
    info = ModelVersionInfo.from_mlflow(mv)
    assert (info.name, info.version, info.run_id) == ("m", "3", "r1")
    assert info.aliases == (CHAMPION,)
    assert (info.trained_from, info.trained_until) == ("2021-01-01", "2023-08-31")
    assert honest_precision_tag(250) == "honest_precision_at_250"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("stratum-home")
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield Settings(home=home, mlflow_uri=None)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)


def _register(settings: Settings, name: str, tmp: Path) -> tuple[RiskModel, pd.DataFrame]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=800), "b": rng.normal(size=800)})
    y = (rng.random(800) < 1 / (1 + np.exp(-2 * X["a"]))).astype(int)
    params = LightGBMParams(n_estimators=20, early_stopping_rounds=5)
    model = RiskModel(params, "sigmoid").fit(X, y, X_tune=X, y_tune=y)
    model.save(tmp / RISK_MODEL_ARTIFACT)
    experiment_id = configure_mlflow(settings)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifacts(str(tmp / RISK_MODEL_ARTIFACT), RISK_MODEL_ARTIFACT)
    client = client_for(settings)
    client.create_registered_model(name)
    mv = client.create_model_version(
        name, f"runs:/{run.info.run_id}/{RISK_MODEL_ARTIFACT}", run.info.run_id
    )
    client.set_model_version_tag(name, mv.version, TAG_TRAINED_FROM, "2021-01-01")
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    return model, X


def test_load_by_alias_or_number_and_champion_info(settings: Settings, tmp_path: Path) -> None:
    name = "read-side"
    model, X = _register(settings, name, tmp_path)
    assert mlflow.get_experiment_by_name(EXPERIMENT_NAME) is not None
    assert champion_info(name, settings) is None
    assert champion_info("never-registered", settings) is None

    loaded, info = load_risk_model(name, CHALLENGER, settings)
    np.testing.assert_array_equal(loaded.predict_risk(X), model.predict_risk(X))
    assert info.version == "1" and info.aliases == (CHALLENGER,)
    assert info.trained_from == "2021-01-01"
    by_number, _ = load_risk_model(name, 1, settings)
    np.testing.assert_array_equal(by_number.raw_score(X), model.raw_score(X))

    MlflowClient(settings.tracking_uri, settings.tracking_uri).set_registered_model_alias(
        name, CHAMPION, "1"
    )
    champion = champion_info(name, settings)
    assert champion is not None and champion.version == "1"
    with pytest.raises(MlflowException):
        load_risk_model(name, "no_such_alias", settings)
