"""Scoring runs on a generated town with a real small model, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from sqlalchemy import func, select

from stratum_ml.config import Settings
from stratum_ml.features.population import CURRENT_PRACTICE_FEATURE
from stratum_ml.io import write_frame_atomic
from stratum_ml.model.store import client_for
from stratum_ml.monitoring.drift import DriftResult
from stratum_ml.runs import (
    NO_REFERENCE,
    RunModel,
    RunNotFound,
    RunSummary,
    changes_by_district,
    changes_of,
    create_run,
    drift_of_run,
    get_run,
    list_runs,
    work_list,
)
from stratum_ml.runs.tracking import DRIFT_ARTIFACT, SCORING_EXPERIMENT
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.sources import AsOfAfterExtractError
from stratum_ml.store import Store, open_store
from stratum_ml.store.tables import RunChangeRow, RunItemRow, RunReasonRow, ScoringRunRow
from stratum_ml.synthetic.generate import Municipality
from tests.runs.conftest import FIRST, SECOND

TOP = 100


def _counts(store: Store) -> dict[str, int]:
    with store.transaction() as session:
        return {
            t.__tablename__: int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in (ScoringRunRow, RunItemRow, RunReasonRow, RunChangeRow)
        }


def _mlflow_runs(settings: Settings, run_id: str) -> list[mlflow.entities.Run]:
    client = client_for(settings)
    experiment = client.get_experiment_by_name(SCORING_EXPERIMENT)
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id], f"params.run_id = '{run_id}'"))


def _logged(settings: Settings, summary: RunSummary) -> mlflow.entities.Run:
    """The MLflow run a stored run names, checked to be in the experiment ``scoring``."""
    assert summary.mlflow_run_id is not None
    client = client_for(settings)
    run = client.get_run(summary.mlflow_run_id)
    assert client.get_experiment(run.info.experiment_id).name == SCORING_EXPERIMENT
    assert run.data.params["run_id"] == summary.run_id
    return run


def _two_runs(
    town: Municipality, model: RunModel, store: Store, settings: Settings
) -> tuple[str, str]:
    first = create_run(town.sources, FIRST, model, store, settings=settings, top_k=TOP)
    second = create_run(town.sources, SECOND, model, store, settings=settings, top_k=TOP)
    assert first.stored_now and second.stored_now
    return first.run_id, second.run_id


def test_two_runs_a_month_apart_remember_what_was_on_the_list(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    first_id, second_id = _two_runs(runs_town, run_model, store, mlflow_settings)
    first, second = get_run(store, first_id), get_run(store, second_id)
    assert first.previous_run_id is None and second.previous_run_id == first_id
    assert (second.as_of, second.model_version, second.top_k) == (SECOND, "1", TOP)
    dwellings = len(runs_town.sources.addresses.query("use_purpose == 'woonfunctie'"))
    assert first.n_items == second.n_items == dwellings
    assert set(second.timings) == {"score", "reasons", "fallback", "drift", "changes"}

    listed = work_list(store, second_id)
    assert listed["rank"].tolist() == list(range(1, TOP + 1))
    assert listed["probability"].is_monotonic_decreasing
    assert set(listed["state"]) <= {"new", "rank change", "unchanged"}
    assert (listed["state"] == "new").any() and (listed["state"] == "rank change").any()
    first_list = work_list(store, first_id)
    assert (first_list["state"] == "new").all()
    new = listed.loc[listed["state"] == "new", "address_id"]
    assert not new.isin(first_list["address_id"]).any()
    moved = listed.loc[listed["state"] == "rank change"]
    before = first_list.set_index("address_id")["rank"]
    assert (moved["previous_rank"] == moved["address_id"].map(before)).all()
    assert (moved["previous_rank"] != moved["rank"]).all()
    assert listed["reason_1"].notna().all() and listed["reason_1"].str.contains("risk").any()
    scorer = Scorer.from_sources(run_model.model, runs_town.sources, SECOND)
    top = listed["address_id"].head(10).tolist()
    expected = [[r.text for r in reasons] for reasons in scorer.reasons(top, n=3)]
    stored = listed.head(10)[["reason_1", "reason_2", "reason_3"]].to_numpy().tolist()
    assert [[t for t in row if isinstance(t, str)] for row in stored] == expected
    dutch = work_list(store, second_id, language="nl")
    assert dutch["reason_1"].notna().all() and (dutch["reason_1"] != listed["reason_1"]).all()

    changes = changes_of(store, second_id)
    entered = set(changes.loc[changes["change"] == "entered", "address_id"])
    assert entered == set(new)
    left = changes.loc[changes["change"] == "left"]
    assert len(left) == len(entered) and not left["address_id"].isin(listed["address_id"]).any()
    movers = changes.loc[changes["change"].isin(["moved_up", "moved_down"])]
    assert ((movers["rank"] - movers["previous_rank"]).abs() > second.changes_min_move).all()
    assert second.changes["entered"] == len(entered)
    by_district = changes_by_district(changes)
    assert sum(c["entered"] for c in by_district.values()) == len(entered)
    assert changes_of(store, first_id).empty

    assert [r.run_id for r in list_runs(store)] == [second_id, first_id]

    logged = _logged(mlflow_settings, second)
    assert logged.info.status == "FINISHED"
    assert logged.data.params["as_of"] == str(SECOND) and logged.data.params["model_version"] == "1"
    assert logged.data.metrics["changes_entered"] == len(entered)
    assert "timing_store_s" in logged.data.metrics and "drift_drifted" in logged.data.metrics
    artifacts = [a.path for a in client_for(mlflow_settings).list_artifacts(logged.info.run_id)]
    assert DRIFT_ARTIFACT in artifacts


def test_the_fallback_ranks_by_reports_in_the_past_year(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    from stratum_ml.features.build import build_features
    from stratum_ml.features.population import population_queries

    summary = create_run(runs_town.sources, SECOND, run_model, store, settings=mlflow_settings)
    with store.transaction() as session:
        items = pd.DataFrame(
            session.execute(
                select(RunItemRow.address_id, RunItemRow.fallback_rank).where(
                    RunItemRow.run_id == summary.run_id
                )
            ).all(),
            columns=["address_id", "fallback_rank"],
        ).set_index("address_id")
    assert sorted(items["fallback_rank"]) == list(range(1, len(items) + 1))
    queries = population_queries(runs_town.sources.addresses, pd.Timestamp(SECOND))
    reports = build_features(runs_town.sources, queries, features=[CURRENT_PRACTICE_FEATURE])
    by_rank = reports[CURRENT_PRACTICE_FEATURE].reindex(items.index)[
        items["fallback_rank"].sort_values().index
    ]
    assert by_rank.is_monotonic_decreasing and by_rank.iloc[0] > 0


def test_running_again_returns_the_same_run_and_stores_nothing(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    first = create_run(runs_town.sources, FIRST, run_model, store, settings=mlflow_settings)
    counts, logged = _counts(store), len(_mlflow_runs(mlflow_settings, first.run_id))
    again = create_run(runs_town.sources, FIRST, run_model, store, settings=mlflow_settings)
    assert again.run_id == first.run_id and not again.stored_now
    assert again.created_at == first.created_at
    assert _counts(store) == counts
    assert len(_mlflow_runs(mlflow_settings, first.run_id)) == logged
    other_sources = dataclasses.replace(runs_town.sources, fingerprints={"addresses.csv": "ab"})
    other = create_run(other_sources, FIRST, run_model, store, settings=mlflow_settings)
    assert other.run_id != first.run_id and other.stored_now
    other_version = RunModel(
        run_model.model, dataclasses.replace(run_model.info, version="2"), run_model.reference
    )
    newer = create_run(runs_town.sources, FIRST, other_version, store, settings=mlflow_settings)
    assert newer.run_id not in (first.run_id, other.run_id)
    assert newer.previous_run_id == other.run_id  # same date, stored after it


def test_a_date_after_the_extract_date_is_refused_and_nothing_stored(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    with pytest.raises(AsOfAfterExtractError, match="2026-11-01"):
        create_run(
            runs_town.sources, dt.date(2031, 1, 1), run_model, store, settings=mlflow_settings
        )
    assert _counts(store)["scoring_runs"] == 0


def test_drift_is_stored_and_a_version_without_reference_says_so(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings
) -> None:
    with_reference = create_run(
        runs_town.sources, FIRST, run_model, store, settings=mlflow_settings
    )
    stored = drift_of_run(store, with_reference.run_id)
    assert stored is not None
    result = DriftResult.model_validate(stored)
    assert result.drifted == with_reference.drifted and with_reference.drift_note is None
    assert {f.feature for f in result.features} == set(run_model.model.feature_names_in_)

    bare = RunModel(run_model.model, dataclasses.replace(run_model.info, version="3"))
    without = create_run(runs_town.sources, FIRST, bare, store, settings=mlflow_settings)
    assert without.drifted is None and without.drift_note == NO_REFERENCE
    assert drift_of_run(store, without.run_id) is None
    assert _logged(mlflow_settings, without).data.params["drift"] == NO_REFERENCE


def test_the_work_list_exports_to_csv_and_parquet(
    runs_town: Municipality, run_model: RunModel, store: Store, mlflow_settings: Settings, tmp_path
) -> None:
    summary = create_run(runs_town.sources, FIRST, run_model, store, settings=mlflow_settings)
    listed = work_list(store, summary.run_id)
    for name in ("list.csv", "list.parquet"):
        write_frame_atomic(listed, tmp_path / name)
    back = pd.read_parquet(tmp_path / "list.parquet")
    assert back["address_id"].tolist() == listed["address_id"].tolist()
    assert pd.read_csv(tmp_path / "list.csv", dtype={"address_id": str})["rank"].tolist()[:3] == [
        1,
        2,
        3,
    ]


def test_an_unknown_run_is_a_clear_error(store: Store) -> None:
    for read in (get_run, work_list, changes_of):
        with pytest.raises(RunNotFound, match="no scoring run 'nope'"):
            read(store, "nope")


def _stored_items(store: Store, run_id: str) -> pd.DataFrame:
    with store.transaction() as session:
        rows = session.execute(
            select(
                RunItemRow.address_id,
                RunItemRow.rank,
                RunItemRow.probability,
                RunItemRow.fallback_rank,
            ).where(RunItemRow.run_id == run_id)
        ).all()
    columns = ["address_id", "rank", "probability", "fallback_rank"]
    return pd.DataFrame(rows, columns=columns).sort_values("rank").reset_index(drop=True)


def _stored_reasons(store: Store, run_id: str) -> pd.DataFrame:
    with store.transaction() as session:
        rows = session.execute(
            select(
                RunReasonRow.address_id,
                RunReasonRow.position,
                RunReasonRow.feature,
                RunReasonRow.contribution,
            ).where(RunReasonRow.run_id == run_id)
        ).all()
    frame = pd.DataFrame(rows, columns=["address_id", "position", "feature", "contribution"])
    return frame.sort_values(["address_id", "position"]).reset_index(drop=True)


def test_a_partitioned_run_stores_the_same_ranking_as_a_local_one(
    runs_town: Municipality,
    run_model: RunModel,
    store: Store,
    mlflow_settings: Settings,
    tmp_path: Path,
) -> None:
    local = create_run(runs_town.sources, SECOND, run_model, store, settings=mlflow_settings)
    other = open_store(f"sqlite:///{tmp_path / 'partitioned.db'}")
    try:
        parted = create_run(
            runs_town.sources,
            SECOND,
            run_model,
            other,
            settings=mlflow_settings,
            engine="partitioned",
            partitions=4,
        )
        assert parted.stored_now and parted.run_id == local.run_id
        assert parted.n_items == local.n_items > 1000
        mine, theirs = _stored_items(store, local.run_id), _stored_items(other, parted.run_id)
        pd.testing.assert_frame_equal(mine, theirs, check_exact=False, rtol=1e-9)
        assert mine["address_id"].tolist() == theirs["address_id"].tolist()
        pd.testing.assert_frame_equal(
            _stored_reasons(store, local.run_id),
            _stored_reasons(other, parted.run_id),
            check_exact=False,
            rtol=1e-9,
        )
        assert parted.changes == local.changes
    finally:
        other.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"engine": "spark"}, "engine must be one of local, partitioned, dask"),
        ({"engine": "partitioned", "scheduler": "tcp://x:8786"}, "needs the dask engine"),
    ],
)
def test_a_run_refuses_an_unknown_engine_and_stores_nothing(
    runs_town: Municipality,
    run_model: RunModel,
    store: Store,
    mlflow_settings: Settings,
    options: dict[str, str],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        create_run(
            runs_town.sources,
            FIRST,
            run_model,
            store,
            settings=mlflow_settings,
            **options,
        )
    assert set(_counts(store).values()) == {0}
