"""The evaluation report: its JSON round trip and its flattening to MLflow metric keys."""

from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd
import pytest

from stratum_ml.evaluation.gates import GateVerdict
from stratum_ml.evaluation.metrics import HonestEstimate, NaiveEstimate
from stratum_ml.training.report import (
    CalibrationBin,
    EvaluationReport,
    HoldoutMetrics,
    PrecisionAtK,
    ProbabilityMetrics,
    PropensityReport,
    RandomBaseline,
    VariantReport,
)
from stratum_ml.training.tracking import metrics_of


def _honest(k: int, estimate: float, region_k: int | None = None) -> HonestEstimate:
    return HonestEstimate(
        estimate=estimate,
        ci_low=estimate - 0.1 if not math.isnan(estimate) else math.nan,
        ci_high=estimate + 0.1 if not math.isnan(estimate) else math.nan,
        n=40,
        n_positive=20,
        k=k,
        region_k=region_k or k,
        population=5000,
        threshold=1.5,
        widened=region_k is not None,
        ci_method="wilson",
        confidence=0.95,
        region=f"top {region_k or k}",
    )


def _naive(k: int, estimate: float) -> NaiveEstimate:
    return NaiveEstimate(estimate, 0.5, 0.9, k, k, 900, 0.95, "all visits")


def _verdict(passed: bool) -> GateVerdict:
    checks = pd.DataFrame(
        [
            {
                "attribute": "any_resident_born_outside_europe",
                "metric": "selection_rate",
                "group": "yes",
                "reference_group": "no",
                "value": 0.2,
                "reference_value": 0.1,
                "ratio": math.inf if not passed else 1.1,
                "ratio_ci_low": math.nan,
                "ratio_ci_high": 2.0,
                "status": "pass" if passed else "fail",
                "note": "",
            }
        ]
    )
    return GateVerdict(passed, [] if passed else ["ratio is inf"], checks, ["a note"])


def _report(passed: bool = True) -> EvaluationReport:
    probabilities = ProbabilityMetrics(
        roc_auc=0.8, pr_auc=0.4, brier=0.1, log_loss=0.3, prevalence=0.12, n=900
    )
    return EvaluationReport(
        headline_k=100,
        precision=(
            PrecisionAtK(
                k=100,
                honest=_honest(100, 0.6),
                naive=_naive(100, 0.8),
                current_practice=_honest(100, 0.3),
            ),
            PrecisionAtK(k=250, honest=_honest(250, math.nan, 400), naive=_naive(250, 0.7)),
        ),
        fairness=_verdict(passed),
        random_baseline=RandomBaseline(precision=0.15, ci_low=0.1, ci_high=0.2, n=200, hits=30),
        holdout=HoldoutMetrics(
            all_visits=probabilities,
            random_visits=None,
            calibration=(
                CalibrationBin(
                    bin=0,
                    p_low=0.0,
                    p_high=0.2,
                    n=50,
                    mean_predicted=0.1,
                    observed_rate=0.12,
                    ci_low=0.05,
                    ci_high=0.2,
                ),
            ),
        ),
        proxy_features_flagged=("tenure",),
        variants=(
            VariantReport(
                mitigation="none",
                registered=True,
                n_features=30,
                headline=_honest(100, 0.6),
                fairness_passed=passed,
            ),
        ),
        propensity=PropensityReport(
            auc=0.9, effective_sample_size=350.5, max_weight=20.0, clipped=3, controls=1800
        ),
        best_iteration=87,
    )


def test_the_json_is_strict_and_reads_back_to_the_same_report() -> None:
    report = _report(passed=False)
    text = report.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    again = EvaluationReport.from_json(text)
    assert again.fairness.to_dict() == report.fairness.to_dict()
    assert math.isinf(again.fairness.checks["ratio"].iloc[0])
    assert math.isnan(again.at(250).honest.estimate)
    assert again.to_json() == text
    assert again.headline == report.headline


def test_views_by_k() -> None:
    report = _report()
    assert report.ks == [100, 250]
    assert report.honest[100].estimate == 0.6 and report.naive[250].estimate == 0.7
    assert report.headline.k == 100
    with pytest.raises(KeyError, match="precision@50"):
        report.at(50)
    table = report.honest_vs_naive()
    assert table["naive_estimate"].tolist() == [0.8, 0.7]
    assert table["current_practice_estimate"].iloc[0] == 0.3
    assert math.isnan(table["current_practice_estimate"].iloc[1])
    assert report.variants[0].to_row()["honest_precision_at_100"] == 0.6
    assert report.holdout is not None
    assert report.holdout.calibration_frame()["observed_rate"].tolist() == [0.12]


def test_flattening_gives_the_metric_keys_of_every_run() -> None:
    metrics = metrics_of(_report())
    assert metrics["honest_precision_at_100"] == 0.6
    assert metrics["honest_precision_at_100_ci_low"] == pytest.approx(0.5)
    assert metrics["honest_precision_at_100_n_random"] == 40.0
    assert metrics["honest_precision_at_250_region_k"] == 400.0
    # k=250 was widened to the top 400: not estimable; k=100 was not
    assert metrics["honest_precision_estimable_at_100"] == 1.0
    assert metrics["honest_precision_estimable_at_250"] == 0.0
    assert metrics["naive_precision_at_100"] == 0.8
    assert metrics["baseline_random_precision_at_100"] == 0.15
    assert metrics["lift_over_random_at_100"] == pytest.approx(4.0)
    assert metrics["baseline_current_practice_precision_at_100"] == 0.3
    assert metrics["lift_over_current_practice_at_100"] == pytest.approx(2.0)
    assert "baseline_current_practice_precision_at_250" not in metrics
    assert math.isnan(metrics["lift_over_random_at_250"])
    assert (metrics["baseline_random_ci_low"], metrics["baseline_random_ci_high"]) == (0.1, 0.2)
    assert metrics["holdout_roc_auc"] == 0.8 and metrics["holdout_n"] == 900.0
    assert not any(key.startswith("holdout_random_") for key in metrics)
    assert metrics["propensity_auc"] == 0.9 and metrics["ipw_clipped"] == 3.0
    assert metrics["propensity_controls"] == 1800.0
    assert metrics["fairness_passed"] == 1.0 and metrics["best_iteration"] == 87.0
    assert all(isinstance(v, float) for v in metrics.values())


def test_a_minimal_report_flattens_to_what_it_holds() -> None:
    report = EvaluationReport(
        headline_k=100,
        precision=(PrecisionAtK(k=100, honest=_honest(100, 0.5), naive=_naive(100, 0.6)),),
        fairness=_verdict(False),
    )
    assert set(metrics_of(report)) == {
        "honest_precision_at_100",
        "honest_precision_at_100_ci_low",
        "honest_precision_at_100_ci_high",
        "honest_precision_at_100_n_random",
        "honest_precision_at_100_region_k",
        "honest_precision_estimable_at_100",
        "naive_precision_at_100",
        "fairness_passed",
    }


def _card_headline(estimate: HonestEstimate) -> str:
    """The performance paragraph of the card of a report whose headline is ``estimate``."""
    from stratum_ml.features.catalogue import FeatureSet
    from stratum_ml.model.risk_model import RiskModel
    from stratum_ml.training.card import model_card_markdown
    from stratum_ml.training.config import RunConfig
    from stratum_ml.training.outcome import TrainingOutcome

    report = _report()
    report = report.model_copy(
        update={
            "headline_k": 250,
            "precision": (
                report.precision[0],
                PrecisionAtK(k=250, honest=estimate, naive=_naive(250, 0.7)),
            ),
        }
    )
    outcome = TrainingOutcome(
        model=RiskModel(),
        config=RunConfig(ks=(100, 250), headline_k=250),
        feature_set=FeatureSet.default(),
        report=report,
        params={},
        periods={},
    )
    card = model_card_markdown(outcome, "3")
    (paragraph,) = [p for p in card.split("\n\n") if p.startswith("**Honest precision@250")]
    return paragraph


def test_the_card_headline_says_not_estimable_with_bounds_when_widened() -> None:
    widened = dataclasses.replace(
        _honest(250, 0.085, 11461),
        estimable=False,
        bound_low=0.012,
        bound_high=0.988,
        n_in_top_k=3,
    )
    text = _card_headline(widened)
    assert text.startswith("**Honest precision@250: not estimable.**")
    assert "between 0.012 and 0.988" in text and "Only 3 random-sample visits" in text
    assert "wider top 11461" in text and "do not read it as precision@250" in text
    assert not text.startswith("**Honest precision@250: 0.085")
    metrics = metrics_of(
        _report().model_copy(
            update={"precision": (PrecisionAtK(k=250, honest=widened, naive=_naive(250, 0.7)),)}
        )
    )
    assert metrics["honest_precision_estimable_at_250"] == 0.0
    assert metrics["honest_precision_at_250"] == 0.085  # the number stays, flagged beside it


def test_the_card_headline_gives_the_interval_when_estimable() -> None:
    text = _card_headline(_honest(250, 0.4))
    assert text.startswith("**Honest precision@250: 0.400 [0.300, 0.500]**")
    assert "not estimable" not in text
