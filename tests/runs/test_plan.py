"""Visit plans on a stored run (SQLite and PostgreSQL), feedback that names the run, and the
design-based estimates of the run's date from visits answered by the truth."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from stratum_ml.config import Settings
from stratum_ml.runs import RunModel, create_run
from stratum_ml.runs.estimates import evaluate_run
from stratum_ml.runs.plan import (
    PlanError,
    PlanNotFound,
    create_plan,
    decline_pick,
    draw_plan,
    explain_share,
    get_plan,
    plan_export,
    plan_strata,
    planned_run_of,
)
from stratum_ml.serving.outcomes import OutcomeError, OutcomeStore
from stratum_ml.store import Store
from stratum_ml.synthetic.generate import Municipality
from stratum_ml.synthetic.truth import truth_at
from tests.runs.conftest import FIRST, SECOND

TODAY = dt.date(2026, 11, 1)


@pytest.mark.parametrize(
    ("population", "capacity", "share"),
    [(3000, 300, 0.1), (60_000, 500, 0.1), (60_000, 100, 0.2), (800, 500, 0.5), (1000, 50, 0.0)],
)
def test_strata_add_up_to_the_capacity_and_cover_every_rank(
    population: int, capacity: int, share: float
) -> None:
    strata = plan_strata(population, capacity, share)
    assert sum(s.drawn for s in strata) == capacity
    assert sum(s.size for s in strata) == population
    assert [s.rank_from for s in strata[1:]] == [s.rank_to + 1 for s in strata[:-1]]
    top = strata[0]
    assert top.kind == "top" and top.size == top.drawn == capacity - round(capacity * share)
    assert all(0 <= s.drawn <= s.size for s in strata)
    if share and population > 1000:
        assert strata[-1].kind == "population" and strata[-1].drawn >= 1


def test_a_draw_is_reproducible_and_its_probabilities_are_the_strata_s() -> None:
    a = draw_plan(3000, 300, 0.1, seed=7)
    assert a.equals(draw_plan(3000, 300, 0.1, seed=7))
    assert not a.equals(draw_plan(3000, 300, 0.1, seed=8))
    assert a["rank"].is_unique and len(a) == 300
    for s in plan_strata(3000, 300, 0.1):
        picks = a.loc[a["stratum"] == s.index]
        assert len(picks) == s.drawn
        assert picks["rank"].between(s.rank_from, s.rank_to).all()
        assert np.allclose(picks["inclusion_probability"], s.drawn / s.size)


def test_explain_gives_the_stratified_half_width() -> None:
    """Capacity 500, share 0.1: ranks 451-500 hold 20 of 50 drawn; 1-450 are counted."""
    e = explain_share(60_000, 500, 0.1, runs_per_year=12)
    rows = e.precision.set_index("k")
    expected = 1.959963984540054 * np.sqrt(50**2 * (1 - 20 / 50) * 0.25 / 20) / 500
    assert rows.loc[500, "half_width_run"] == pytest.approx(expected)
    assert rows.loc[500, "half_width_year"] == pytest.approx(expected / np.sqrt(12))
    assert rows.loc[500, "visits_per_year"] == 240
    assert rows.loc[100, "half_width_run"] == rows.loc[250, "half_width_run"] == 0
    assert e.bands["per_run"].sum() == 500
    # a plan without exploration cannot say anything beyond its top
    assert np.isnan(explain_share(60_000, 100, 0.0, ks=(250,)).precision.iloc[0]["half_width_run"])


def _answer_from_truth(
    town: Municipality, plan_items: pd.DataFrame, day: dt.date, run_id: str, as_of: dt.date
) -> pd.DataFrame:
    """The visits of a plan's picks on ``day`` as the contract's rows; the outcome is the truth
    label on the run's date ``as_of`` (the design's assumption: a visit finds what was there
    on the run's date; no detection error)."""
    truth = truth_at(town.truth, plan_items["address_id"], as_of.isoformat())
    return pd.DataFrame(
        {
            "inspection_id": "",
            "address_id": plan_items["address_id"].to_numpy(),
            "inspected_at": day.isoformat(),
            "reason": "risk_model",
            "outcome": np.where(truth, "violation", "no_violation"),
            "violation_type": np.where(truth, "overcrowding", ""),
            "run_id": run_id,
        }
    ).replace("", None)


def test_a_plan_is_stored_exported_declined_answered_and_estimated(
    runs_town: Municipality, run_model: RunModel, mlflow_settings: Settings, store: Store
) -> None:
    run = create_run(runs_town.sources, SECOND, run_model, store, settings=mlflow_settings)
    with pytest.raises(PlanNotFound, match="no visit plan"):
        get_plan(store, run.run_id)
    plan = create_plan(store, run.run_id, 300, 0.2, created_by="cli:test")
    assert plan.stored_now and plan.n_top == 240 and plan.n_exploration == 60
    assert len(plan.items) == 300 and plan.items["address_id"].is_unique
    again = create_plan(store, run.run_id, 300, 0.2, created_by="cli:other")
    assert not again.stored_now and again.items.equals(plan.items)
    with pytest.raises(PlanError, match="never redrawn"):
        create_plan(store, run.run_id, 200, 0.2, created_by="cli:test")

    # the visitors' export does not tell exploration picks from top picks
    visitors = plan_export(plan)
    assert list(visitors.columns) == [
        "run_id",
        "visit_order",
        "address_id",
        "district",
        "neighbourhood",
    ]
    assert set(visitors["address_id"]) == set(plan.items["address_id"])
    assert visitors["address_id"].tolist() != plan.items["address_id"].tolist()
    analyst = plan_export(plan, "analyst")
    assert {"address_id", "rank", "pick", "inclusion_probability"} <= set(analyst.columns)
    assert (analyst.loc[analyst["pick"] == "top", "inclusion_probability"] == 1).all()

    # declines: a reason from the list, checked free text, picks only, once
    exploration = plan.items.loc[plan.items["pick"] == "exploration", "address_id"].tolist()
    with pytest.raises(PlanError, match="reason must be one of"):
        decline_pick(store, run.run_id, exploration[0], "busy", None, declined_by="a")
    with pytest.raises(PlanError, match="needs a note"):
        decline_pick(store, run.run_id, exploration[0], "other", " ", declined_by="a")
    with pytest.raises(PlanError, match="person data"):
        decline_pick(store, run.run_id, exploration[0], "safety", "BSN 123456789", declined_by="a")
    outside = sorted(set(runs_town.sources.addresses["address_id"]) - set(plan.items["address_id"]))
    with pytest.raises(PlanError, match="not a pick"):
        decline_pick(store, run.run_id, outside[0], "safety", None, declined_by="a")
    decline_pick(store, run.run_id, exploration[0], "no_access", "gate locked", declined_by="a")
    with pytest.raises(PlanError, match="declined before"):
        decline_pick(store, run.run_id, exploration[0], "safety", None, declined_by="a")
    assert exploration[0] not in set(plan_export(get_plan(store, run.run_id))["address_id"])

    # a visit from the web app's form answers the plan that listed the address
    top = plan.items.loc[plan.items["pick"] == "top", "address_id"].iloc[0]
    assert planned_run_of(store, top, SECOND) == run.run_id
    assert planned_run_of(store, top, SECOND - dt.timedelta(days=1)) is None  # before the run
    assert planned_run_of(store, outside[0], SECOND) is None  # not a pick
    assert planned_run_of(store, exploration[0], SECOND) is None  # declined

    # feedback names the run; random_sample and addresses outside the plan are refused
    outcomes = OutcomeStore(store, runs_town.sources.addresses["address_id"])
    visits = _answer_from_truth(
        runs_town, plan.items, SECOND + dt.timedelta(days=10), run.run_id, SECOND
    )
    visits = visits.loc[visits["address_id"] != exploration[0]]  # declined: not visited
    unvisited = visits["address_id"].isin(exploration[1:3])
    bad = visits.copy()
    bad.loc[bad.index[0], "reason"] = "random_sample"
    bad.loc[bad.index[1], "address_id"] = outside[0]
    with pytest.raises(OutcomeError) as refused:
        outcomes.record_many(bad, recorded_by="cli:test", today=TODAY, source="visits.csv")
    message = str(refused.value)
    assert "visits.csv: nothing was stored" in message
    assert "line 2: reason: reason 'random_sample' can no longer be typed in" in message
    assert f"line 3: address_id: {outside[0]} is not in the visit plan" in message
    assert evaluate_run(store, run.run_id).n_visits == 0  # all or nothing
    with pytest.raises(OutcomeError, match="can no longer be typed in"):
        outcomes.record(
            address_id=outside[0],
            inspected_at=SECOND,
            reason="random_sample",
            outcome="no_violation",
            violation_type=None,
            recorded_by="k",
            today=TODAY,
        )
    with pytest.raises(OutcomeError, match="before the run's date"):
        outcomes.record(
            address_id=exploration[5],
            inspected_at=SECOND - dt.timedelta(days=1),
            reason="risk_model",
            outcome="no_violation",
            violation_type=None,
            recorded_by="k",
            today=TODAY,
            run_id=run.run_id,
        )
    stored = outcomes.record_many(visits.loc[~unvisited], recorded_by="cli:test", today=TODAY)
    assert len(stored) == len(visits) - 2 and {r.run_id for r in stored} == {run.run_id}
    with pytest.raises(OutcomeError, match="already stored"):
        outcomes.record_many(visits.loc[~unvisited].head(3), recorded_by="cli:test", today=TODAY)

    # the estimates contain the truth of the run's list
    result = evaluate_run(store, run.run_id, ks=(50, 100, 250, 300, 500))
    assert result.n_visits == 297 and result.n_nonresponse == 3
    assert any(n.startswith("these estimate what visits find, not the truth") for n in result.notes)
    ranks = _ranks(store, run.run_id)
    truth = truth_at(runs_town.truth, ranks.index, SECOND.isoformat())
    for row in result.precision:
        true = truth[ranks.to_numpy() <= row["k"]].mean()
        assert row["low"] <= true <= row["high"], row
        assert row["method"] != "not_estimable" or row["naive"] is not None
    by_k = {r["k"]: r for r in result.precision}
    assert by_k[100]["low"] == by_k[100]["high"] == truth[ranks.to_numpy() <= 100].mean()
    assert by_k[300]["method"] == "horvitz_thompson_with_nonresponse_bounds"
    assert result.prevalence.contains(truth.mean())


def _ranks(store: Store, run_id: str) -> pd.Series:
    from sqlalchemy import select

    from stratum_ml.store.tables import RunItemRow

    with store.transaction() as session:
        rows = session.execute(
            select(RunItemRow.address_id, RunItemRow.rank).where(RunItemRow.run_id == run_id)
        ).all()
    return pd.Series([r[1] for r in rows], index=[r[0] for r in rows]).sort_values()


def test_a_run_without_a_plan_is_not_estimable_and_another_version_is_estimated(
    runs_town: Municipality, run_model: RunModel, mlflow_settings: Settings, store: Store
) -> None:
    bare = create_run(runs_town.sources, FIRST, run_model, store, settings=mlflow_settings)
    result = evaluate_run(store, bare.run_id, ks=(100,))
    assert result.plan is None and result.notes
    assert all(r["method"] == "not_estimable" for r in result.precision)
    assert (result.precision[0]["low"], result.precision[0]["high"]) == (0.0, 1.0)

    planned = create_run(runs_town.sources, SECOND, run_model, store, settings=mlflow_settings)
    other_info = dataclasses.replace(run_model.info, version="2")
    other = create_run(
        runs_town.sources,
        SECOND,
        RunModel(run_model.model, other_info, run_model.reference),
        store,
        settings=mlflow_settings,
    )
    plan = create_plan(store, planned.run_id, 300, 0.2, created_by="cli:test")
    visits = _answer_from_truth(runs_town, plan.items, SECOND, planned.run_id, SECOND)
    OutcomeStore(store, runs_town.sources.addresses["address_id"]).record_many(
        visits, recorded_by="cli:test", today=TODAY
    )
    result = evaluate_run(store, planned.run_id, ks=(100, 300))
    versions = {(r["model_version"], r["k"]) for r in result.precision}
    assert versions == {(f"stratum-risk v{v}", k) for v in ("1", "2") for k in (100, 300)}
    assert {r["run_id"] for r in result.precision} == {planned.run_id, other.run_id}
    assert result.n_nonresponse == 0 and result.n_visits == 300
