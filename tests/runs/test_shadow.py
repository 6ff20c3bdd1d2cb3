"""The challenger shadow-scored on a run: its rank of every dwelling, stored beside the run's."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from stratum_ml.config import Settings
from stratum_ml.features.build import build_features
from stratum_ml.features.population import population_queries
from stratum_ml.model.params import LightGBMParams
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.runs import RunModel, create_run, shadow_ranks, work_list
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.store import Store
from stratum_ml.synthetic.generate import Municipality
from stratum_ml.synthetic.truth import truth_at
from tests.runs.conftest import FEATURES, FIRST, SECOND
from tests.runs.test_runs import _logged

TOP = 50


def _frame(town: Municipality, on: str, features: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    queries = population_queries(town.sources.addresses, pd.Timestamp(on))
    X = build_features(town.sources, queries, features=features)
    return X, pd.Series(truth_at(town.truth, X.index, on).astype(int), index=X.index)


def _challenger(town: Municipality, features: list[str], version: str, run: RunModel) -> RunModel:
    """A second, smaller model on the same town, registered as ``version``."""
    X, y = _frame(town, "2025-06-01", features)
    X_tune, y_tune = _frame(town, "2025-12-01", features)
    params = LightGBMParams(n_estimators=40, early_stopping_rounds=10)
    model = RiskModel(params, "sigmoid").fit(X, y, X_tune=X_tune, y_tune=y_tune)
    return RunModel(model, dataclasses.replace(run.info, version=version, aliases=("challenger",)))


@pytest.fixture(scope="module")
def shadow(runs_town: Municipality, run_model: RunModel) -> RunModel:
    return _challenger(runs_town, FEATURES[:3], "2", run_model)


def test_a_run_stores_the_challengers_rank_of_every_dwelling(
    runs_town: Municipality,
    run_model: RunModel,
    shadow: RunModel,
    store: Store,
    mlflow_settings: Settings,
) -> None:
    summary = create_run(
        runs_town.sources,
        FIRST,
        run_model,
        store,
        settings=mlflow_settings,
        top_k=TOP,
        shadow=shadow,
    )
    ranks = shadow_ranks(store, summary.run_id)
    assert len(ranks) == summary.n_items
    assert ranks["rank"].tolist() == list(range(1, summary.n_items + 1))
    assert set(ranks["model_version"]) == {"2"}

    expected = Scorer.from_sources(shadow.model, runs_town.sources, FIRST).table
    assert ranks.index.tolist() == expected.index.astype(str).tolist()
    np.testing.assert_allclose(ranks["probability"], expected["probability"])
    # the run's own list is the champion's, untouched by the shadow
    champion = Scorer.from_sources(run_model.model, runs_town.sources, FIRST).table
    listed = work_list(store, summary.run_id)
    assert listed["address_id"].tolist() == champion.index[:TOP].astype(str).tolist()
    assert (ranks.loc[listed["address_id"], "run_rank"].to_numpy() == listed["rank"]).all()
    assert ranks["run_rank"].ne(ranks["rank"]).any()  # two different lists
    assert _logged(mlflow_settings, summary).data.params["shadow_model"] == "stratum-risk v2"


def test_a_shadow_that_cannot_score_holds_nothing_up(
    runs_town: Municipality,
    run_model: RunModel,
    store: Store,
    mlflow_settings: Settings,
) -> None:
    """A challenger reading the ownership table, on sources without it: the run goes on."""
    needs_owner = _challenger(runs_town, [*FEATURES[:2], "owner_type"], "3", run_model)
    sources = dataclasses.replace(runs_town.sources, ownership=None)
    summary = create_run(
        sources, FIRST, run_model, store, settings=mlflow_settings, top_k=TOP, shadow=needs_owner
    )
    assert summary.stored_now
    assert shadow_ranks(store, summary.run_id).empty
    note = _logged(mlflow_settings, summary).data.params["shadow_model"]
    assert note.startswith("stratum-risk v3 could not score")


def test_the_runs_own_version_is_not_shadowed_twice(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    summary = create_run(
        runs_town.sources,
        FIRST,
        run_model,
        store,
        settings=mlflow_settings,
        top_k=TOP,
        shadow=run_model,
    )
    assert shadow_ranks(store, summary.run_id).empty


def test_a_plan_draws_from_the_challengers_top_picks_and_estimates_both_versions(
    runs_town: Municipality,
    run_model: RunModel,
    shadow: RunModel,
    store: Store,
    mlflow_settings: Settings,
) -> None:
    """Capacity 300: 240 top picks, 30 exploration, 30 from the challenger's top 300."""
    from stratum_ml.runs.estimates import evaluate_run
    from stratum_ml.runs.plan import (
        PlanError,
        create_plan,
        plan_export,
        plan_inclusion_probabilities,
    )
    from stratum_ml.serving.outcomes import OutcomeStore
    from tests.runs.test_plan import TODAY, _answer_from_truth

    plain = create_run(
        runs_town.sources, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    with pytest.raises(PlanError, match="no shadow-scored challenger"):
        create_plan(store, plain.run_id, 300, 0.1, created_by="t", challenger_share=0.1)
    summary = create_run(
        runs_town.sources, FIRST, run_model, store, settings=mlflow_settings, shadow=shadow
    )
    plan = create_plan(store, summary.run_id, 300, 0.1, created_by="t", challenger_share=0.1)
    assert (plan.n_top, plan.n_exploration, plan.n_challenger) == (240, 30, 30)
    assert plan.challenger == "stratum-risk v2" and plan.to_dict()["challenger_share"] == 0.1
    ranks = shadow_ranks(store, summary.run_id)
    picked = plan.items.set_index("address_id")
    challenger_picks = picked.loc[picked["pick"] == "challenger"]
    assert len(challenger_picks) == 30
    assert (ranks.loc[challenger_picks.index, "rank"] <= 300).all()
    assert (ranks.loc[challenger_picks.index, "run_rank"] > 240).all()
    stratum = plan.strata[-1]
    assert stratum.kind == "challenger"
    assert stratum.size == int(((ranks["rank"] <= 300) & (ranks["run_rank"] > 240)).sum())
    assert np.allclose(challenger_picks["inclusion_probability"], 30 / stratum.size)
    # visitors cannot tell a challenger pick from the others
    visitors = plan_export(plan)
    assert "pick" not in visitors and set(visitors["address_id"]) == set(picked.index)
    assert "challenger" in set(plan_export(plan, "analyst")["pick"])

    visits = _answer_from_truth(
        runs_town, plan.items, FIRST + dt.timedelta(days=10), summary.run_id, FIRST
    )
    recorded = OutcomeStore(store, runs_town.sources.addresses["address_id"]).record_many(
        visits, recorded_by="t", today=TODAY
    )
    # what the refit weighs plan visits by: each recorded visit's pick's probability
    inclusion = plan_inclusion_probabilities(store)
    by_address = picked["inclusion_probability"]
    assert len(inclusion) == len(recorded) == 300
    for r in recorded:
        assert inclusion[r.inspection_id] == pytest.approx(by_address[r.address_id])
    result = evaluate_run(store, summary.run_id, ks=(100, 300))
    rows = {(r["model_version"], r["k"]): r for r in result.precision}
    assert {v for v, _ in rows} == {"stratum-risk v1", "stratum-risk v2"}
    assert rows[("stratum-risk v2", 300)]["scored_as"] == "shadow"
    truth = pd.Series(truth_at(runs_town.truth, ranks.index, FIRST.isoformat()), index=ranks.index)
    for k in (100, 300):
        row = rows[("stratum-risk v2", k)]
        true = float(truth[ranks["rank"] <= k].mean())
        assert row["method"] == "horvitz_thompson" and row["low"] <= true <= row["high"], row
        assert row["high"] - row["low"] < 0.5
