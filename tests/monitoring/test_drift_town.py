"""The issue's test: a generated town with its water readings halved has drifted; as it is, not.

A real model (LightGBM on the town's visits, split by time as training splits
them), its real reference on the population as of the sources' extract date (as
training builds it: the world the model is first used in), and a scoring run as
of that date -- on the town as generated and on a copy whose water meters read half.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from stratum_ml.features.build import build_features
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.features.population import population_queries
from stratum_ml.model.reference import DriftReference, build_reference
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.monitoring.drift import DriftResult, drift_of
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.sources.extract import extract_date
from stratum_ml.sources.tables import SourceTables
from stratum_ml.synthetic.generate import Municipality
from stratum_ml.training.config import RunConfig
from stratum_ml.training.dataset import build_training_set
from stratum_ml.training.split import time_split


@dataclasses.dataclass(frozen=True)
class Trained:
    model: RiskModel
    reference: DriftReference
    run_date: pd.Timestamp


@pytest.fixture(scope="module")
def trained(small_town: Municipality) -> Trained:
    tables = small_town.sources
    ts = build_training_set(tables, FeatureSet.default())
    split = time_split(ts.visits["inspected_at"], RunConfig().split)
    train, tune = ts.subset(split.train), ts.subset(split.tune)
    model = RiskModel(seed=0).fit(train.X, train.y, X_tune=tune.X, y_tune=tune.y)
    extract = extract_date(tables).date
    queries = population_queries(tables.addresses, extract)
    population = build_features(tables, queries, features=list(ts.X.columns))
    raw = model.raw_score(population[model.feature_names_in_])
    reference = build_reference(population, raw, as_of=extract)
    return Trained(model, reference, pd.Timestamp(extract))


def _run(trained: Trained, tables: SourceTables) -> DriftResult:
    scorer = Scorer.from_sources(trained.model, tables, trained.run_date.date())
    return drift_of(scorer, trained.reference)


def test_the_town_as_generated_has_not_drifted(trained: Trained, small_town: Municipality) -> None:
    result = _run(trained, small_town.sources)
    assert not result.drifted, result.reasons
    assert result.feature("water_m3_year").status == "ok"
    assert result.score.ks_statistic < 0.1


def test_halved_water_readings_are_flagged(trained: Trained, small_town: Municipality) -> None:
    water = small_town.sources.water_usage
    assert water is not None
    halved = dataclasses.replace(
        small_town.sources, water_usage=water.assign(volume_m3=water["volume_m3"] / 2)
    )
    result = _run(trained, halved)
    assert result.drifted
    flagged = {r.split(":")[0] for r in result.reasons}
    assert {"water_m3_year", "water_ratio_to_expected"} <= flagged
    assert result.feature("water_ratio_to_expected").status == "alarm"
