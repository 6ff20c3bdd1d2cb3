"""End-to-end model behaviour on a generated municipality, checked against its truth."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
import shap

from stratum_ml.evaluation.design import StratifiedDesign
from stratum_ml.evaluation.metrics import top_k_mask
from stratum_ml.evaluation.truth import true_precision
from stratum_ml.features.asof import make_queries
from stratum_ml.features.build import build_features
from stratum_ml.features.catalogue import FeatureSet
from stratum_ml.features.population import CURRENT_PRACTICE_FEATURE, population_queries
from stratum_ml.model.risk_model import RiskModel
from stratum_ml.runs.estimates import PlanVisits
from stratum_ml.runs.plan import draw_plan, plan_strata, stratum_of_rank
from stratum_ml.scoring.scorer import Scorer
from stratum_ml.sources import extract_date
from stratum_ml.sources.tables import SourceTables
from stratum_ml.synthetic.generate import Municipality
from stratum_ml.synthetic.truth import truth_at
from stratum_ml.training.config import RunConfig
from stratum_ml.training.dataset import (
    build_training_set,
    labelled_visits,
    with_recorded_visits,
)
from stratum_ml.training.outcome import TrainingOutcome
from stratum_ml.training.split import time_split
from stratum_ml.training.train import train_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outcome(small_town: Municipality) -> TrainingOutcome:
    return train_model(small_town.sources, small_town.audit, RunConfig(evaluate_mitigations=False))


@pytest.fixture(scope="module")
def population_scores(outcome: TrainingOutcome, small_town: Municipality) -> Scorer:
    as_of = pd.Timestamp(outcome.periods["population_as_of"]).date()
    return Scorer.from_sources(outcome.model, small_town.sources, as_of)


def _true_precision(scorer: Scorer, town: Municipality, ks: tuple[int, ...]) -> pd.DataFrame:
    """True precision@k of the scorer's ranking and of current practice."""
    return true_precision(
        scorer.table["raw_score"],
        town.truth,
        scorer.as_of,
        ks,
        practice=scorer.features[CURRENT_PRACTICE_FEATURE],
    )


def test_true_precision_at_100_beats_both_baselines(
    population_scores: Scorer, small_town: Municipality
) -> None:
    result = _true_precision(population_scores, small_town, (100,))
    p = result.set_index("ranking")["true_precision"]
    assert p["model"] > 5 * p["random"]
    assert p["model"] > p["current_practice"] + 0.1


def test_honest_estimate_lands_near_the_true_value(
    outcome: TrainingOutcome, population_scores: Scorer, small_town: Municipality
) -> None:
    est = outcome.honest[100]
    truth = _true_precision(population_scores, small_town, (est.region_k,))
    true_value = truth.set_index("ranking").loc["model", "true_precision"]
    assert est.n >= 10
    assert est.ci_low - 0.03 <= true_value <= est.ci_high + 0.03
    # the naive number on policy-chosen visits is far above what a random visit finds
    assert outcome.naive[100].estimate > est.ci_high


def test_training_features_equal_features_from_sources_cut_at_the_visit_date(
    small_town: Municipality,
) -> None:
    """No leak: a visit's row equals what the sources said the day before the visit."""
    tables = small_town.sources
    visits = labelled_visits(tables.inspections)
    sample = visits.iloc[np.linspace(0, len(visits) - 1, 6).astype(int)]
    fs = FeatureSet.default()
    pipeline = build_training_set(tables, fs).X.loc[sample.index]
    for inspection_id, visit in sample.iterrows():
        cut = visit["inspected_at"]
        past = _sources_before(tables, cut)
        queries = make_queries([visit["address_id"]], cut, index=pd.Index([inspection_id]))
        own = build_features(past, queries, features=list(fs.features))
        pd.testing.assert_frame_equal(own, pipeline.loc[[inspection_id]], check_names=False)


def _sources_before(t: SourceTables, cut: pd.Timestamp) -> SourceTables:
    """The source tables as an extract made on ``cut`` would have held them."""

    def started(df: pd.DataFrame | None, start: str, end: str) -> pd.DataFrame:
        assert df is not None
        rows = df.loc[df[start] < cut].copy()
        rows.loc[rows[end] >= cut, end] = pd.NaT
        return rows

    def dated(df: pd.DataFrame | None, column: str) -> pd.DataFrame:
        assert df is not None
        return df.loc[df[column] < cut]

    assert t.energy_usage is not None
    energy_known = pd.to_datetime((t.energy_usage["year"] + 1).astype(str) + "-01-01") < cut
    return dataclasses.replace(
        t,
        registrations=started(t.registrations, "registered_from", "registered_until"),
        ownership=started(t.ownership, "owned_from", "owned_until"),
        businesses=started(t.businesses, "registered_from", "registered_until"),
        inspections=dated(t.inspections, "inspected_at"),
        reports=dated(t.reports, "reported_at"),
        water_usage=dated(t.water_usage, "period_end"),
        energy_usage=t.energy_usage.loc[energy_known],
    )


def test_a_leaky_feature_build_inflates_the_naive_metric(
    small_town: Municipality, outcome: TrainingOutcome
) -> None:
    """Features taken 90 days after each visit see its after-effects and look better."""
    tables = small_town.sources
    visits = labelled_visits(tables.inspections)
    fs = outcome.feature_set
    leaky_queries = make_queries(
        visits["address_id"],
        visits["inspected_at"] + pd.Timedelta(days=90),
        index=pd.Index(visits.index, name="inspection_id"),
    )
    X_leaky = build_features(tables, leaky_queries, features=list(fs.features))
    honest = build_training_set(tables, fs)
    y = honest.y
    split = time_split(visits["inspected_at"], RunConfig().split)

    def holdout_auc(X: pd.DataFrame) -> float:
        from sklearn.metrics import roc_auc_score

        model = RiskModel(seed=0).fit(
            X[split.train], y[split.train], X_tune=X[split.tune], y_tune=y[split.tune]
        )
        return float(roc_auc_score(y[split.holdout], model.raw_score(X[split.holdout])))

    leaky, clean = holdout_auc(X_leaky), holdout_auc(honest.X)
    assert leaky > clean + 0.02, (leaky, clean)


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier with TreeExplainer:UserWarning")
def test_contributions_are_exact_treeshap_and_sum_to_the_raw_score(
    outcome: TrainingOutcome,
) -> None:
    model = outcome.model
    X = outcome.evaluation_data["holdout"][model.feature_names_in_].head(300)
    ours = model.contributions(X)
    assert np.allclose(ours.sum(axis=1).to_numpy(), model.raw_score(X), atol=1e-6)
    explainer = shap.TreeExplainer(model.booster_)
    theirs = explainer.shap_values(model.matrix(X))
    assert np.abs(ours.drop(columns="bias").to_numpy() - np.asarray(theirs)).max() < 1e-6


def test_reasons_read_like_sentences(population_scores: Scorer) -> None:
    top = population_scores.priority_list(5, language="nl")
    assert len(top) == 5
    assert all(1 <= len(a.reasons) <= 3 for a in top)
    text = top[0].reasons[0].text
    assert "(verhoogt het risico)" in text and "{" not in text
    assert [a.rank for a in top] == [1, 2, 3, 4, 5]


def test_the_registered_final_fit_learns_from_every_visit_the_service_recorded(
    small_town: Municipality, outcome: TrainingOutcome
) -> None:
    """Outcomes recorded through the service are the newest: the split puts them in the
    holdout, the final fit trains on them."""
    tables = small_town.sources
    visits = labelled_visits(tables.inspections)
    newest = tables.inspections.loc[tables.inspections["inspection_id"].isin(visits.index[-40:])]
    exported = dataclasses.replace(tables, inspections=tables.inspections.drop(index=newest.index))
    merged, added = with_recorded_visits(exported, newest)  # as `stratum train` does
    assert added == 40
    assert set(merged.inspections["inspection_id"]) == set(tables.inspections["inspection_id"])

    final = outcome.final_fit
    assert final is not None
    assert final.n_visits == len(visits)
    assert final.visits_by_part["holdout"] == outcome.periods["holdout_n"] >= 40
    assert final.fit_until == str(visits["inspected_at"].max().date())
    assert outcome.periods["train_until"] < outcome.periods["holdout_from"] <= final.fit_until
    assert outcome.registered_model is final.model


def test_the_final_fit_is_at_least_as_precise_as_the_split_model_in_truth(
    small_town: Municipality, outcome: TrainingOutcome
) -> None:
    """True precision@500 (and @100) at the extract date: the refit against the split model.

    Measured on this town (12,000 addresses, seed 3), as of 2026-11-01: split model
    0.300 @500 and 0.70 @100, refit 0.310 @500 and 0.79 @100.
    """
    as_of = extract_date(small_town.sources).date
    precision = {}
    for name, model in (("split", outcome.model), ("refit", outcome.registered_model)):
        scorer = Scorer.from_sources(model, small_town.sources, as_of)
        table = true_precision(scorer.table["raw_score"], small_town.truth, as_of, (100, 500))
        rows = table.loc[table["ranking"] == "model"].set_index("k")["true_precision"]
        precision[name] = rows.to_dict()
    assert precision["refit"][500] >= precision["split"][500], precision
    assert precision["refit"][100] >= precision["split"][100], precision


def _plan_on(
    town: Municipality, as_of: dt.date, model: RiskModel, capacity: int, share: float
) -> PlanVisits:
    """A visit plan over ``model``'s ranking of the town as of ``as_of``, answered from the truth.

    ``model`` stands in for the champion whose run drew the plan; the design estimates
    any other ranking of the same population from the plan's visits.
    """
    queries = population_queries(town.sources.addresses, pd.Timestamp(as_of))
    ids = pd.Index(queries["address_id"].astype(str))
    X = build_features(town.sources, queries, features=model.feature_names_in_)
    score = model.raw_score(X[model.feature_names_in_])
    y = truth_at(town.truth, ids, as_of.isoformat()).astype(float)
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[np.argsort(-score, kind="stable")] = np.arange(1, len(ids) + 1)
    picks = draw_plan(len(ids), capacity, share, seed=1)
    sampled = np.isin(ranks, picks["rank"].to_numpy())
    design = StratifiedDesign.of(
        stratum_of_rank(ranks, plan_strata(len(ids), capacity, share)),
        sampled,
        sampled,
        np.where(sampled, y, np.nan),
    )
    return PlanVisits("planned-run", as_of, design, ids)


def test_the_fairness_frontier_is_measured_like_the_model(
    outcome: TrainingOutcome, small_town: Municipality
) -> None:
    config = RunConfig(evaluate_mitigations=False, frontier_grid_size=3, final_fit_folds=0)
    as_of = extract_date(small_town.sources).date - dt.timedelta(days=31)
    plan = _plan_on(small_town, as_of, outcome.model, capacity=500, share=0.3)
    outcome = train_model(small_town.sources, small_town.audit, config, plan_visits=plan)
    table = outcome.tables["fairness_frontier"]
    assert table["kind"].tolist() == ["model", "current_practice", *["frontier"] * 3]
    points = table.loc[table["kind"] == "frontier"].set_index("point")
    assert points["multiplier"].is_monotonic_increasing
    model = table.iloc[0]
    unconstrained = points.loc[points["multiplier"] == 0].iloc[0]
    # the point without pressure is the model itself on the holdout: same ratio
    assert unconstrained["holdout_fpr_ratio"] == pytest.approx(model["holdout_fpr_ratio"])
    innocent = [c for c in table.columns if c.startswith("innocent_per_500_")]
    assert {"innocent_per_500_True", "innocent_per_500_False"} <= set(innocent)
    assert table.loc[1, innocent].notna().any()  # current practice counted too
    assert "fairness_frontier" in outcome.figures
    # every row is estimated from the plan's visits by Horvitz-Thompson, the holdout's beside
    assert (table["estimate_source"] == plan.describe()).all()
    assert table.loc[0, "precision_method"] == "horvitz_thompson"  # the plan's own ranking
    assert table["precision_method"].isin(["horvitz_thompson", "not_estimable"]).all()
    assert table["fpr_ratio_method"].isin(["horvitz_thompson", "not_estimable"]).all()
    assert {"fpr_True", "fpr_False_low", "holdout_precision", "holdout_fpr_ratio"} <= set(
        table.columns
    )
    # ... and each point's interval holds the true precision of its top k on the plan's date
    queries = make_queries(plan.address_ids, pd.Timestamp(as_of))
    X = build_features(small_town.sources, queries, features=outcome.model.feature_names_in_)
    y = truth_at(small_town.truth, plan.address_ids, as_of.isoformat())
    k = config.headline_k
    # every point's model and report are kept for `promote --frontier-point N`
    assert sorted(outcome.frontier_points) == sorted(points.index.astype(int))
    for n, (point_model, point_report) in outcome.frontier_points.items():
        assert point_report.headline.estimate == pytest.approx(
            points.loc[n, "holdout_precision"], nan_ok=True
        )
        assert list(point_model.feature_names_in_) == list(outcome.model.feature_names_in_)
        top = top_k_mask(point_model.raw_score(X[point_model.feature_names_in_]), k)
        truth = float(y[top].mean())
        # an interval, or the worst/best-case bounds of a point the plan cannot estimate
        assert points.loc[n, "precision_low"] <= truth <= points.loc[n, "precision_high"], n
    assert any(
        n.startswith("innocent households per 500 visits") for n in outcome.fairness_verdict.notes
    )


def test_without_a_plan_the_frontier_says_its_estimates_are_the_holdout_s() -> None:
    from stratum_ml.training.train import HOLDOUT_SOURCE, _estimated

    row = {"kind": "frontier", "point": 0, "precision": 0.5, "fpr_ratio": 1.2}
    labelled = _estimated(dict(row), None, None, RunConfig())
    assert labelled["precision_method"] == labelled["fpr_ratio_method"] == "random_sample_holdout"
    assert labelled["estimate_source"] == HOLDOUT_SOURCE and "not design-based" in HOLDOUT_SOURCE
    assert labelled["precision"] == 0.5  # the holdout's estimate stays in the row


def test_a_fresh_model_first_run_at_the_extract_date_is_not_drifted(
    outcome: TrainingOutcome, small_town: Municipality
) -> None:
    """The drift reference is the population as of the extract date, not the holdout start."""
    from stratum_ml.monitoring.drift import drift_of
    from stratum_ml.training.tracking import drift_reference

    extract = extract_date(small_town.sources).date
    assert outcome.periods["reference_as_of"] == str(extract)
    assert outcome.periods["population_as_of"] != str(extract)  # two worlds on this town
    reference = drift_reference(outcome)
    assert reference.as_of == extract
    scorer = Scorer.from_sources(outcome.registered_model, small_town.sources, extract)
    result = drift_of(scorer, reference)
    assert not result.drifted, result.reasons
    assert result.score.ks_statistic < 0.05
    assert outcome.reference_population is not None
    assert outcome.reference_population is not outcome.evaluation_data["population"]
