"""A small generated town, a real small model with its drift reference, and an MLflow home."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from stratum_ml.config import Settings
from stratum_ml.features.build import build_features
from stratum_ml.features.population import population_queries
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.reference import build_reference
from stratum_ml.model.registry import ModelVersionInfo
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.runs import RunModel
from stratum_ml.synthetic.generate import GeneratorConfig, Municipality, generate_tables
from stratum_ml.synthetic.truth import truth_at

FEATURES = [
    "floor_area_m2",
    "tenure",
    "registered_persons",
    "m2_per_registered_person",
    "water_ratio_to_expected",
    "water_m3_year",
]
#: two monthly runs before the town's extract date (2026-11-01)
FIRST, SECOND = dt.date(2026, 9, 1), dt.date(2026, 10, 1)


@pytest.fixture(scope="session")
def runs_town() -> Municipality:
    return generate_tables(GeneratorConfig(n_addresses=3000, seed=11))


def _labelled(town: Municipality, on: str) -> tuple[pd.DataFrame, pd.Series]:
    queries = population_queries(town.sources.addresses, pd.Timestamp(on))
    X = build_features(town.sources, queries, features=FEATURES)
    return X, pd.Series(truth_at(town.truth, X.index, on).astype(int), index=X.index)


@pytest.fixture(scope="session")
def run_model(runs_town: Municipality) -> RunModel:
    """Version "1" of ``stratum-risk`` with its drift reference (as of 2026-06-01)."""
    X, y = _labelled(runs_town, "2025-06-01")
    X_tune, y_tune = _labelled(runs_town, "2025-12-01")
    params = LightGBMParams(n_estimators=60, early_stopping_rounds=10)
    model = RiskModel(params, "sigmoid", seed=0).fit(X, y, X_tune=X_tune, y_tune=y_tune)
    population, _ = _labelled(runs_town, "2026-06-01")
    reference = build_reference(
        population, model.raw_score(population[model.feature_names_in_]), as_of=dt.date(2026, 6, 1)
    )
    info = ModelVersionInfo(
        name="stratum-risk",
        version="1",
        aliases=("champion",),
        run_id="0" * 32,  # no such training run: a reference must be given to get drift
        tags={},
        trained_from=None,
        trained_until=None,
    )
    return RunModel(model, info, reference)


@pytest.fixture(scope="session")
def mlflow_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """An embedded MLflow store (SQLite) for the experiment ``scoring``."""
    home: Path = tmp_path_factory.mktemp("runs-home")
    return Settings(home=home, mlflow_uri=None)
