"""The fairness frontier's rows estimated from a stored run's visit plan (Horvitz-Thompson).

A run is stored, its plan drawn and answered from the truth; :func:`latest_plan_visits`
finds it, and :func:`~stratum_ml.training.frontier.design_row` estimates any ranking of
the run's population from its visits -- the run's own list and another ranking that
leans on a protected group -- with intervals that hold the truth of each ranking.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratum_ml.config import Settings
from stratum_ml.evaluation.sensitive import address_groups
from stratum_ml.features.asof import make_queries
from stratum_ml.features.build import build_features
from stratum_ml.runs import RunModel, create_run
from stratum_ml.runs.estimates import latest_plan_visits
from stratum_ml.runs.plan import create_plan
from stratum_ml.serving.outcomes import OutcomeStore
from stratum_ml.store import Store
from stratum_ml.synthetic.generate import Municipality
from stratum_ml.synthetic.truth import truth_at
from stratum_ml.training.frontier import FRONTIER_ATTRIBUTE, design_row
from tests.runs.conftest import FIRST, SECOND
from tests.runs.test_plan import TODAY, _answer_from_truth

K = 300


def _true(top: np.ndarray, y: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> tuple:
    def fpr(group: np.ndarray) -> float:
        return float((top & (y == 0) & group).sum() / ((y == 0) & group).sum())

    return float(y[top].mean()), fpr(inside) / fpr(outside)


def test_the_frontier_is_estimated_from_the_latest_plan_with_visits(
    runs_town: Municipality, run_model: RunModel, mlflow_settings: Settings, store: Store
) -> None:
    assert latest_plan_visits(store) is None  # no run yet
    first = create_run(runs_town.sources, FIRST, run_model, store, settings=mlflow_settings)
    create_plan(store, first.run_id, 300, 0.2, created_by="cli:test")
    assert latest_plan_visits(store) is None  # a plan without visits gives nothing
    run = create_run(runs_town.sources, SECOND, run_model, store, settings=mlflow_settings)
    plan = create_plan(store, run.run_id, 300, 0.2, created_by="cli:test")
    visits = _answer_from_truth(runs_town, plan.items, SECOND, run.run_id, SECOND)
    OutcomeStore(store, runs_town.sources.addresses["address_id"]).record_many(
        visits, recorded_by="cli:test", today=TODAY
    )
    found = latest_plan_visits(store, model_name="stratum-risk")
    assert found is not None and (found.run_id, found.as_of) == (run.run_id, SECOND)
    assert found.n_visits == 300 and run.run_id in found.describe()
    assert latest_plan_visits(store, model_name="another") is None
    assert latest_plan_visits(store, until=FIRST) is None  # the first run's plan has no visits

    # two rankings of the run's population as of its date: the model's, and one that
    # adds a term for the protected group (a planted disparity)
    ids = found.address_ids
    queries = make_queries(ids, pd.Timestamp(SECOND))
    X = build_features(runs_town.sources, queries, features=run_model.model.feature_names_in_)
    group = address_groups(runs_town.sources, runs_town.audit, queries)[FRONTIER_ATTRIBUTE]
    inside = (group.astype("string") == "True").fillna(False).to_numpy(dtype=bool)
    outside = (group.astype("string") == "False").fillna(False).to_numpy(dtype=bool)
    y = truth_at(runs_town.truth, ids, SECOND.isoformat()).astype(float)
    own = run_model.model.raw_score(X[run_model.model.feature_names_in_])
    rows = []
    for scores in (own, own + 1.5 * inside):
        row = design_row(np.asarray(scores), found, inside, outside, K)
        order = np.argsort(-np.asarray(scores), kind="stable")
        top = np.zeros(len(ids), dtype=bool)
        top[order[:K]] = True
        true_precision, true_ratio = _true(top, y, inside, outside)
        assert row["estimate_source"] == found.describe()
        assert row["precision_method"] != "not_estimable", row
        assert row["precision_low"] <= true_precision <= row["precision_high"], row
        assert row["fpr_ratio_method"] != "not_estimable", row
        assert row["fpr_ratio_low"] <= row["fpr_ratio"] <= row["fpr_ratio_high"]
        assert row["fpr_True_low"] <= row["fpr_True"] <= row["fpr_True_high"]
        rows.append((row, true_ratio))
    # the ranking that leans on the group treats its innocent households worse, and the
    # estimates say so (coverage of the ratio over many draws: tests/evaluation)
    (own_row, own_ratio), (leaning, leaning_ratio) = rows
    assert leaning_ratio > 2 * own_ratio
    assert leaning["fpr_ratio"] > 2 * own_row["fpr_ratio"] and leaning["fpr_ratio_low"] > 1
    # the run's own top K is the plan's top picks and the draws of its bands up to K
    assert own_row["precision_n_visits"] == int((plan.items["rank"] <= K).sum())
