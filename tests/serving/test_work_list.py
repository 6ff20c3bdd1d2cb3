"""The service's side of stored runs, without a server: the run follower, item states, gauges.

Two monthly runs of a real small model on a generated town (the fixtures of
``tests/runs``), in the operational store on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import mlflow
import numpy as np
import pytest

from stratum_ml.config import Settings
from stratum_ml.model.registry import CHAMPION
from stratum_ml.runs import RunModel, create_run, get_run, state_of, work_list
from stratum_ml.scoring import Scorer
from stratum_ml.serving import endpoints
from stratum_ml.serving.api_models import PriorityListRequest, PriorityListResponse, ReasonOut
from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.champion_watch import ChampionWatch
from stratum_ml.serving.decisions import DecisionStore
from stratum_ml.serving.metrics import run_metrics_text
from stratum_ml.serving.outcomes import OutcomeStore
from stratum_ml.serving.served_run import RunFollower, ServedRun, latest_run_id
from stratum_ml.serving.work_list import (
    Visit,
    in_cool_off,
    latest_decisions,
    latest_visits,
    previous_as_of,
    previous_ranks,
)
from stratum_ml.sources import SourceTables
from stratum_ml.store import Store
from stratum_ml.synthetic.generate import Municipality
from tests.model.test_promotion import registered
from tests.runs.conftest import FIRST, SECOND, mlflow_settings, run_model, runs_town

__all__ = ["mlflow_settings", "run_model", "runs_town"]  # fixtures shared with tests/runs

TOP = 50


def _served(store: Store, run_id: str, model: RunModel, tables: SourceTables) -> ServedRun:
    run = get_run(store, run_id)
    scorer = Scorer.from_sources(model.model, tables, run.as_of)
    return ServedRun(run=run, model=model.model, info=model.info, tables=tables, scorer=scorer)


def _decide(decisions: DecisionStore, address: str, run_id: str, supersedes: str | None) -> str:
    return decisions.record(
        address_id=address,
        decision="pass_on_for_visit" if supersedes is None else "decline",
        reason="signals_several_sources",
        note="many water readings for the registered household",
        decided_by="k1",
        role="analyst",
        key_name="test analyst",
        model_version="1",
        scoring_date=SECOND,
        rank=1,
        probability=0.5,
        supersedes=supersedes,
        run_id=run_id,
    ).decision_id


def test_item_state_decisions_and_visits_against_the_previous_run(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    tables = runs_town.sources
    first = create_run(tables, FIRST, run_model, store, settings=mlflow_settings, top_k=TOP)
    second = create_run(tables, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP)
    stored = work_list(store, second.run_id)
    ids = stored["address_id"].tolist()

    before = previous_ranks(store, second, ids)
    on_both = stored.dropna(subset=["previous_rank"])
    assert before == dict(
        zip(on_both["address_id"], on_both["previous_rank"].astype(int), strict=True)
    )
    assert 0 < len(before) < len(ids)  # some new, some on both lists
    assert [state_of(int(r), before.get(a)) for a, r in zip(ids, stored["rank"], strict=True)] == (
        stored["state"].tolist()
    )
    assert previous_ranks(store, first, ids) == {} and previous_as_of(store, first) is None
    assert previous_as_of(store, second) == FIRST

    decisions = DecisionStore(store)
    a, b = ids[0], ids[1]
    opened = _decide(decisions, a, first.run_id, None)
    closed_by = _decide(decisions, a, second.run_id, opened)
    _decide(decisions, b, second.run_id, None)
    latest = latest_decisions(store, [a, b, ids[2]])
    assert set(latest) == {a, b}
    assert (latest[a].decision_id, latest[a].decision, latest[a].open) == (
        closed_by,
        "decline",
        True,
    )
    assert latest[a].run_id == second.run_id and latest[a].key_name == "test analyst"
    on_second = decisions.history(run_id=second.run_id)
    assert {d.address_id for d in on_second} == {a, b}
    assert [d.decision_id for d in decisions.history(run_id=first.run_id)] == [opened]

    visits = latest_visits(store, tables)
    inspected = tables.inspections
    last_in_sources = inspected.loc[inspected["address_id"] == inspected["address_id"].iloc[0]]
    somebody = str(last_in_sources["address_id"].iloc[0])
    assert visits[somebody].source == "sources"
    assert visits[somebody].inspected_at == max(d.date() for d in last_in_sources["inspected_at"])
    day = dt.date(2026, 10, 20)
    OutcomeStore(store, tables.addresses["address_id"]).record(
        address_id=a,
        inspected_at=day,
        reason="risk_model",
        outcome="no_violation",
        violation_type=None,
        recorded_by="k2",
    )
    assert latest_visits(store, tables)[a] == Visit(day, "no_violation", "service")


def test_the_cool_off_counts_back_from_the_run_date_and_covers_later_visits() -> None:
    as_of = dt.date(2026, 11, 1)
    visit = Visit(dt.date(2026, 5, 5), "violation", "sources")
    assert in_cool_off(visit, as_of, 180)  # 180 days before is 2026-05-05
    assert not in_cool_off(visit, as_of, 179)
    assert in_cool_off(Visit(dt.date(2026, 11, 20), "no_violation", "service"), as_of, 0)


def test_the_follower_swaps_in_a_newer_run_or_champion_between_requests(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    tables = runs_town.sources
    first = create_run(tables, FIRST, run_model, store, settings=mlflow_settings, top_k=TOP)
    champion = {"version": "1"}
    gate = threading.Event()
    loaded: list[str] = []

    def load(version: str, in_force: SourceTables) -> ServedRun:
        gate.wait(30)  # the old run must keep answering while this one loads
        loaded.append(version)
        if version == "broken":
            raise ValueError("no such model")
        run_id = latest_run_id(store, "stratum-risk", "1")
        assert run_id is not None and in_force is tables
        return _served(store, run_id, run_model, in_force)

    follower = RunFollower(
        _served(store, first.run_id, run_model, tables),
        store,
        champion=lambda: champion["version"],
        load=load,
        check_seconds=0.0,
        pinned=None,
    )
    assert follower.current().run.run_id == first.run_id and loaded == []

    second = create_run(tables, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP)
    assert follower.current().run.run_id == first.run_id  # loading in the background
    assert follower.current().run.run_id == first.run_id
    gate.set()
    follower.wait_loaded(60)
    assert follower.served.run.run_id == first.run_id  # swapped at the next request only
    assert follower.current().run.run_id == second.run_id
    assert loaded == ["1"]
    follower.current()
    assert loaded == ["1"]  # nothing new: nothing loaded

    follower.wait_loaded(60)  # the lookup that last call started
    champion["version"] = "broken"
    follower.current()  # looks the champion up in the background
    follower.wait_loaded(60)
    assert follower.current().run.run_id == second.run_id  # the failure left it answering
    follower.wait_loaded(60)
    assert loaded == ["1", "broken"]  # and is not retried until something changes


def test_a_slow_registry_lookup_holds_no_request_up(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    first = create_run(
        runs_town.sources, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    registry_answers = threading.Event()

    def champion() -> str:  # a registry that takes its time
        registry_answers.wait(60)
        return "1"

    follower = RunFollower(
        _served(store, first.run_id, run_model, runs_town.sources),
        store,
        champion=champion,
        load=lambda version, tables: pytest.fail("nothing new to load"),
        check_seconds=0.0,
        pinned=None,
    )
    answered = threading.Event()
    request = threading.Thread(target=lambda: (follower.current(), answered.set()))
    request.start()
    try:
        # before, the request waited for the registry under the follower's lock
        assert answered.wait(10)
        assert follower.current().run.run_id == first.run_id
    finally:
        registry_answers.set()
        request.join(60)
        follower.wait_loaded(60)


def test_the_registry_is_looked_at_while_a_run_loads(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    first = create_run(
        runs_town.sources, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    release_load = threading.Event()
    looked_up: list[int] = []
    served = _served(store, first.run_id, run_model, runs_town.sources)

    def champion() -> str:  # the registry names version 2
        looked_up.append(1)
        return "2"

    def load(version: str, tables: Any) -> Any:  # a load that takes its time
        release_load.wait(60)
        raise RuntimeError("not loaded in this test")

    follower = RunFollower(
        served, store, champion=champion, load=load, check_seconds=0.0, pinned=None
    )
    try:
        follower.current()  # looks up: version 2
        follower.wait_loaded(10)
        deadline = time.monotonic() + 10
        while follower._loading is None and time.monotonic() < deadline:
            follower.current()  # starts loading version 2 (held)
        assert follower._loading is not None and follower._loading.is_alive()
        if follower._looking is not None:
            follower._looking.join(10)
        before = len(looked_up)
        follower.current()
        if follower._looking is not None:
            follower._looking.join(10)
        # before, no lookup happened while a load was going on
        assert len(looked_up) > before
    finally:
        release_load.set()
        follower.wait_loaded(60)


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the registry is the point
def test_every_worker_clears_a_repaired_alias_without_a_request(
    runs_town: Municipality,
    run_model: RunModel,
    store: Store,
    mlflow_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = create_run(
        runs_town.sources, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    served = _served(store, first.run_id, run_model, runs_town.sources)
    monkeypatch.delenv("STRATUM_SIGNING_KEYS_DIR", raising=False)
    settings = Settings(home=tmp_path / "registry", mlflow_uri=None, model_name="watched")
    uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    client = registered(settings)  # version 1 is the verified champion
    # two workers of one service on one registry: each its own watch and follower
    watches = [ChampionWatch(settings) for _ in range(2)]
    followers = [
        RunFollower(
            served,
            store,
            champion=functools.partial(watch.champion, "1"),
            load=lambda version, tables: pytest.fail("nothing new to load"),
            check_seconds=0.2,
            pinned=None,
        )
        for watch in watches
    ]
    for follower in followers:
        follower.start_watching()
    try:
        client.set_registered_model_alias("watched", CHAMPION, "3")  # from the MLflow UI

        def both_asked_and_told() -> bool:  # requests come to both workers meanwhile
            return all([f.current() is served for f in followers]) and all(
                watch.problems for watch in watches
            )

        assert _within(20, both_asked_and_told)
        client.set_registered_model_alias("watched", CHAMPION, "1")  # repaired
        # then no request comes to either worker (the kernel hands them to others): before,
        # each kept reporting the moved alias until its next request, and answered that
        # one with it too
        assert _within(20, lambda: not any(watch.problems for watch in watches))
    finally:
        for follower in followers:
            follower.stop_watching()
        mlflow.set_tracking_uri(uris[0])
        mlflow.set_registry_uri(uris[1])


def test_metrics_show_the_served_run_its_drift_and_the_pause(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    run = create_run(
        runs_town.sources, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP
    )
    state = cast(ServiceState, SimpleNamespace(run=get_run(store, run.run_id), store=store))
    text = run_metrics_text(state)
    assert (
        f'stratum_run_info{{as_of="{SECOND}",model_version="1",run_id="{run.run_id}"}} 1.0' in text
    )
    assert "stratum_paused 0.0" in text
    assert f"stratum_run_drifted {1.0 if run.drifted else 0.0}" in text
    assert 'stratum_feature_psi{feature="water_m3_year"}' in text
    assert "stratum_score_ks " in text and "stratum_out_of_range_share " in text


def test_priority_list_reads_the_served_runs_stored_reasons_and_explains_only_the_rest(
    runs_town: Municipality,
    run_model: RunModel,
    store: Store,
    mlflow_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tables = runs_town.sources
    run = create_run(tables, SECOND, run_model, store, settings=mlflow_settings, top_k=TOP)
    served = _served(store, run.run_id, run_model, tables)
    scorer = served.scorer
    state = cast(
        ServiceState,
        SimpleNamespace(
            store=store,
            run=served.run,
            scorer=scorer,
            tables=tables,
            as_of=served.run.as_of,
            model_version="1",
            serving=SimpleNamespace(cool_off_days=0),
        ),
    )
    assert scorer.bias  # computed (one row of TreeSHAP) before counting
    explained: list[int] = []
    contributions = scorer.model.contribution_matrix  # every TreeSHAP call goes through it

    def counted(matrix: Any) -> np.ndarray:
        explained.append(len(matrix))
        return contributions(matrix)

    monkeypatch.setattr(scorer.model, "contribution_matrix", counted)

    def past_top(answer: PriorityListResponse) -> int:
        """Addresses of the answer past the run's top K (the cool-off checks them too)."""
        ranks = [i.rank for i in [*answer.items, *answer.recently_visited]]
        return sum(r > TOP for r in ranks)

    answer = endpoints.priority_list(state, PriorityListRequest(k=TOP, language="nl"))
    ranks = [i.rank for i in answer.items]
    assert len(ranks) == TOP and ranks == sorted(ranks)
    # the top K from the stored run; only what the cool-off brought in from past it is
    # explained by TreeSHAP (the old answer explained all TOP)
    assert sum(explained) == past_top(answer) < TOP // 2
    monkeypatch.undo()
    live, _ = scorer.score([i.address_id for i in answer.items], language="nl")
    for item, scored in zip(answer.items, live, strict=True):
        expected = [ReasonOut.of(r) for r in scored.reasons]
        assert [(r.feature, r.value, r.text) for r in item.reasons] == [
            (r.feature, r.value, r.text) for r in expected
        ]
        for got, want in zip(item.reasons, expected, strict=True):
            assert got.contribution_log_odds == pytest.approx(want.contribution_log_odds)
            assert want.contribution_pp is not None
            assert got.contribution_pp == pytest.approx(want.contribution_pp, rel=1e-6)
    monkeypatch.setattr(scorer.model, "contribution_matrix", counted)
    explained.clear()

    # a district reaches past the top K: those addresses, and only they, are explained
    district = str(scorer.table["district"].iloc[0])
    inside = scorer.table.loc[scorer.table["district"] == district]
    beyond = int((inside["rank"] > TOP).sum())
    k = min(len(inside), int((inside["rank"] <= TOP).sum()) + 5)
    assert beyond >= 5
    answer = endpoints.priority_list(state, PriorityListRequest(k=k, district=district))
    assert sum(explained) == past_top(answer) >= 5
    explained.clear()
    endpoints.priority_list(state, PriorityListRequest(k=3, n_reasons=5))
    assert explained == [3]  # more reasons than a run stores: explained
