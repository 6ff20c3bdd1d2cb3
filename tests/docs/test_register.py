"""The register entry's sentences from a run record: limits kept, estimates said truthfully."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pandas as pd
import pytest

from stratum_ml.docs.facts import RunRecord, VersionFacts, precision_at
from stratum_ml.docs.organisation import Organisation
from stratum_ml.docs.register import register_entry
from stratum_ml.docs.standard import check_entry
from stratum_ml.docs.technical import precision_text

ORG = Organisation(
    organization="Gemeente Voorbeeldstad",
    contact_email="algoritmes@voorbeeldstad.example.nl",
    publication_category="Hoog-risico AI-systeem",
)


def _honest(**change: Any) -> dict[str, Any]:
    return {
        "estimate": 0.42,
        "ci_low": 0.30,
        "ci_high": 0.55,
        "n": 60,
        "k": 100,
        "region_k": 100,
        "population": 5000,
        "widened": False,
        "confidence": 0.95,
    } | change


def _facts(honest: dict[str, Any], *, passed: bool = True, **tags: str) -> VersionFacts:
    reasons = [] if passed else [f"selection_rate ratio for group{i} is 2.0" for i in range(200)]
    run = RunRecord(
        config={"weighting": "none", "headline_k": 100, "fairness": {"metrics": ["x"]}},
        report={
            "headline_k": 100,
            "precision": [{"k": 100, "honest": honest}],
            "fairness": {"passed": passed, "reasons": reasons},
        },
        verdict={},
        feature_set="default",
        features=("a",),
        catalogue=pd.DataFrame(),
        fingerprints={},
        row_counts={},
    )
    return VersionFacts(
        name="m",
        version="2",
        run_id="r",
        run=run,
        tags=dict(tags),
        run_started=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


def test_long_reasons_and_acceptances_still_fit_the_standard() -> None:
    facts = _facts(
        _honest(),
        passed=False,
        fairness_risk_accepted="true",
        fairness_risk_reason="r" * 4900,
        fairness_risk_accepted_at="2026-01-02T00:00:00+00:00",
    )
    entry = register_entry(facts, ORG).entry
    assert check_entry(entry) == []
    assert "group0" in entry["risks"] and "toch in gebruik genomen" in entry["risks"]


@pytest.mark.parametrize(
    "honest",
    [
        _honest(widened=True, region_k=5000),  # widened to the whole town
        _honest(region_k=400),  # a region four times k is not the top k
        {k: v for k, v in _honest().items() if k != "widened"},  # a report that does not say
        _honest(estimable=False),  # a report that marks it not estimable
        _honest(estimate=None, ci_low=None, ci_high=None),
    ],
)
def test_an_estimate_that_is_not_precision_at_k_is_said_in_words(honest: dict[str, Any]) -> None:
    entry = register_entry(_facts(honest), ORG).entry
    methods = entry["methods_and_models"]
    assert (
        "niet te schatten" in methods and "42%" not in methods and "naar schatting" not in methods
    )
    assert "niet te schatten" in entry["risks"]
    p = precision_at(_facts(honest).run.report, 100)
    assert "precision@100: not estimable" in precision_text(p, 100)
    assert "precision@100: 0.420" not in precision_text(p, 100)


def test_an_estimate_of_the_top_k_is_said_with_its_interval() -> None:
    entry = register_entry(_facts(_honest()), ORG).entry
    assert "naar schatting 42% van de huisbezoeken" in entry["methods_and_models"]
    assert "95%-interval 30% tot 55%; geschat op 60 aselecte" in entry["methods_and_models"]
    assert check_entry(entry) == []


@pytest.mark.parametrize(
    ("metrics", "said"),
    [
        (["false_positive_rate"], "Selection-rate parity is audited and reported but not gated"),
        (["selection_rate"], "Selection-rate parity is gated."),
    ],
)
def test_the_fairness_trade_off_said_is_the_gate_of_the_run(metrics: list[str], said: str) -> None:
    from stratum_ml.docs.assessments import assessment_inputs_markdown

    facts = _facts(_honest())
    run = dataclasses.replace(
        facts.run, config=facts.run.config | {"fairness": {"metrics": metrics}}
    )
    text = assessment_inputs_markdown(dataclasses.replace(facts, run=run))
    assert said in text
    assert f"gated metrics {metrics[0]} within" in text
