"""A run stores every dwelling's likely violation type; older runs and models have none."""

from __future__ import annotations

import copy
import dataclasses
from types import SimpleNamespace
from typing import cast

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from stratum_ml.config import Settings
from stratum_ml.features.build import build_features
from stratum_ml.features.population import population_queries
from stratum_ml.model.violation_type import VIOLATION_TYPE_CLASSES, ViolationTypeModel
from stratum_ml.runs import RunModel, create_run, work_list
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.serving.api_models import PriorityListRequest
from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.endpoints import _stored_priority_list
from stratum_ml.store import Store
from stratum_ml.store.tables import RunItemRow
from stratum_ml.synthetic.generate import Municipality
from tests.runs.conftest import FIRST, SECOND

TOP = 50


def _with_types(town: Municipality, run_model: RunModel) -> RunModel:
    """The run model with a real multiclass LightGBM model of the violation type attached."""
    model = copy.copy(run_model.model)
    queries = population_queries(town.sources.addresses, pd.Timestamp("2025-06-01"))
    X = build_features(town.sources, queries, features=list(model.feature_names_in_))
    matrix = model.matrix(X)
    rng = np.random.default_rng(0)
    # a type that depends on the floor area, so the shares differ between dwellings
    area = X["floor_area_m2"].fillna(60).to_numpy()
    labels = np.where(area < 50, 2, np.where(area > 120, 0, rng.integers(0, 5, len(area))))
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 5, "verbose": -1, "num_threads": 1},
        lgb.Dataset(matrix, labels),
        num_boost_round=15,
    )
    model.violation_types_ = ViolationTypeModel(list(VIOLATION_TYPE_CLASSES), booster, 15)
    info = dataclasses.replace(run_model.info, version="7")
    return RunModel(model, info, run_model.reference)


def test_a_run_stores_the_likely_violation_type_and_an_older_model_has_none(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    typed = _with_types(runs_town, run_model)
    without = create_run(
        runs_town.sources, FIRST, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    with_types = create_run(
        runs_town.sources, SECOND, typed, store, settings=mlflow_settings, top_k=TOP
    )
    scorer = Scorer.from_sources(typed.model, runs_town.sources, SECOND)
    assert scorer.violation_types is not None
    expected = scorer.violation_types

    with store.transaction() as session:
        stored = pd.DataFrame(
            session.execute(
                select(
                    RunItemRow.address_id,
                    RunItemRow.violation_type,
                    RunItemRow.violation_type_share,
                ).where(RunItemRow.run_id == with_types.run_id)
            ).all(),
            columns=["address_id", "violation_type", "violation_type_share"],
        ).set_index("address_id")
        older = session.execute(
            select(RunItemRow.violation_type, RunItemRow.violation_type_share).where(
                RunItemRow.run_id == without.run_id
            )
        ).all()
    # every dwelling, not only the work list, carries the scorer's type and share
    assert len(stored) == with_types.n_items == len(expected)
    assert stored["violation_type"].equals(expected["violation_type"].reindex(stored.index))
    np.testing.assert_allclose(
        stored["violation_type_share"].to_numpy(dtype=float),
        expected["violation_type_share"].reindex(stored.index).to_numpy(dtype=float),
    )
    assert set(stored["violation_type"]) <= set(VIOLATION_TYPE_CLASSES)
    assert stored["violation_type"].nunique() > 1
    assert ((stored["violation_type_share"] > 0) & (stored["violation_type_share"] <= 1)).all()
    assert older and all(kind is None and share is None for kind, share in older)

    listed = work_list(store, with_types.run_id)
    assert len(listed) == TOP
    assert listed["violation_type"].tolist() == (
        expected["violation_type"].reindex(listed["address_id"]).tolist()
    )
    first = work_list(store, without.run_id)
    assert first["violation_type"].isna().all() and first["violation_type_share"].isna().all()


def test_the_api_answers_a_stored_runs_violation_types(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    typed = _with_types(runs_town, run_model)
    older = create_run(
        runs_town.sources, FIRST, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    run = create_run(runs_town.sources, SECOND, typed, store, settings=mlflow_settings, top_k=TOP)
    state = cast(ServiceState, SimpleNamespace(store=store))
    answer = _stored_priority_list(state, PriorityListRequest(k=20), run.run_id, None)
    listed = work_list(store, run.run_id).head(20)
    assert [i.violation_type for i in answer.items] == listed["violation_type"].tolist()
    assert [i.violation_type_share for i in answer.items] == pytest.approx(
        listed["violation_type_share"].tolist()
    )
    before = _stored_priority_list(state, PriorityListRequest(k=20), older.run_id, None)
    assert all(i.violation_type is None and i.violation_type_share is None for i in before.items)
