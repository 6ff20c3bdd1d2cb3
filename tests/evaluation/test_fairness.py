"""Fairness audit, proxy check and the fairness gate."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from pydantic import ValidationError
from sklearn.metrics import precision_score

from stratum_ml.evaluation import (
    METRICS_SPEC,
    FairnessGateConfig,
    bootstrap_ci,
    fairness_audit,
    fairness_gate,
    proxy_check,
    top_k_mask,
)
from stratum_ml.evaluation.fairness import _audit

SPEC = {m.name: m for m in METRICS_SPEC}


def _value(frame: pd.DataFrame, attribute: str, group: str, metric: str, column: str) -> float:
    row = frame[
        (frame["attribute"] == attribute) & (frame["group"] == group) & (frame["metric"] == metric)
    ]
    assert len(row) == 1
    return float(row[column].iloc[0])


# --------------------------------------------------------------------------- metric definitions


def test_metric_spec_agrees_with_fairlearn_and_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = rng.integers(0, 2, 500)
    assert SPEC["selection_rate"](y, p) == pytest.approx(selection_rate(y, p))
    assert SPEC["false_positive_rate"](y, p) == pytest.approx(false_positive_rate(y, p))
    assert SPEC["false_negative_rate"](y, p) == pytest.approx(false_negative_rate(y, p))
    assert SPEC["precision"](y, p) == pytest.approx(precision_score(y, p))


def test_empty_denominator_is_nan_not_zero() -> None:
    y = np.array([1.0, 1.0, np.nan])
    p = np.array([0.0, 1.0, 1.0])
    assert math.isnan(SPEC["false_positive_rate"](y, p))  # no labelled negatives
    assert math.isnan(SPEC["precision"](y, np.zeros(3)))  # nothing selected


# --------------------------------------------------------------------------- audit by hand

# Group A: y 1 0 0 1, selected 1 1 0 0.   Group B: y 1 0 0 0 1 0, selected 1 0 0 0 0 0.
TINY_Y = np.array([1, 0, 0, 1, 1, 0, 0, 0, 1, 0], dtype=float)
TINY_P = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0])
TINY_GROUP = pd.DataFrame({"attr": ["A"] * 4 + ["B"] * 6})


def test_tiny_example_by_hand() -> None:
    result = fairness_audit(
        TINY_Y, TINY_P, None, TINY_GROUP, reference_groups={"attr": "B"}, min_group_size=1, n_boot=0
    )
    f = result.frame
    expected = {  # metric: (A, B)
        "selection_rate": (2 / 4, 1 / 6),
        "false_positive_rate": (1 / 2, 0 / 4),
        "false_negative_rate": (1 / 2, 1 / 2),
        "precision": (1 / 2, 1 / 1),
    }
    for metric, (a, b) in expected.items():
        assert _value(f, "attr", "A", metric, "value") == pytest.approx(a)
        assert _value(f, "attr", "B", metric, "value") == pytest.approx(b)
        assert _value(f, "attr", "A", metric, "difference") == pytest.approx(a - b)
        reference_ratio = _value(f, "attr", "B", metric, "ratio")
        assert reference_ratio == pytest.approx(1.0) if b > 0 else math.isnan(reference_ratio)
    assert _value(f, "attr", "A", "selection_rate", "ratio") == pytest.approx(3.0)
    assert _value(f, "attr", "A", "false_positive_rate", "ratio") == math.inf
    assert _value(f, "attr", "A", "false_negative_rate", "ratio") == pytest.approx(1.0)
    assert _value(f, "attr", "A", "precision", "ratio") == pytest.approx(0.5)
    assert _value(f, "attr", "A", "false_positive_rate", "support") == 2
    assert result.reference_groups == {"attr": "B"}


def test_weighted_cells_give_fairlearn_results_on_the_raw_rows() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    y = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    groups = pd.DataFrame({"g": rng.choice(["x", "y", "z"], n)})
    result = fairness_audit(y, p, None, groups, n_boot=0)
    raw = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "false_positive_rate": false_positive_rate,
            "false_negative_rate": false_negative_rate,
            "precision": precision_score,
        },
        y_true=y,
        y_pred=p,
        sensitive_features=groups["g"],
    )
    ours = result.metric_frames["g"].by_group
    for metric in ["selection_rate", "false_positive_rate", "false_negative_rate", "precision"]:
        np.testing.assert_allclose(ours[metric], raw.by_group[metric])
    assert result.metric_frames["g"].ratio()["selection_rate"] == pytest.approx(
        raw.ratio()["selection_rate"]
    )


def test_point_values_are_the_bootstrap_statistic_on_the_unresampled_cells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, tuple[np.ndarray, ...], np.ndarray]] = []

    def recording_bootstrap(stat_fn: Any, *arrays: Any, **kwargs: Any) -> Any:
        calls.append((stat_fn, arrays, kwargs["frequency_weights"]))
        return bootstrap_ci(stat_fn, *arrays, **kwargs)

    monkeypatch.setattr(_audit, "bootstrap_ci", recording_bootstrap)
    y, fair_score, sensitive = _population(n=3000)
    labelled = np.where(np.arange(3000) % 3 == 0, y, np.nan)
    selected = top_k_mask(fair_score, 300)
    result = fairness_audit(labelled, selected, fair_score, sensitive, n_boot=20)
    without_bootstrap = fairness_audit(labelled, selected, fair_score, sensitive, n_boot=0)

    names = [m.name for m in METRICS_SPEC]
    assert len(calls) == sensitive.shape[1]
    for attribute, (statistic, arrays, counts) in zip(sensitive.columns, calls, strict=True):
        assert counts.sum() == 3000  # the cells' own counts: the data, not a replicate
        point = statistic(*arrays, counts)
        rows = result.frame[
            (result.frame["attribute"] == attribute) & result.frame["metric"].isin(names)
        ]
        n_groups = rows["group"].nunique()
        np.testing.assert_array_equal(
            point[: len(names)], rows["value"].to_numpy().reshape(-1, n_groups)
        )
        np.testing.assert_array_equal(
            point[len(names) :], rows["ratio"].to_numpy().reshape(-1, n_groups)
        )
        by_group = result.metric_frames[attribute].by_group
        np.testing.assert_array_equal(point[: len(names)], by_group[names].to_numpy().T)
    pd.testing.assert_frame_equal(
        result.frame.drop(columns=["ci_low", "ci_high", "ratio_ci_low", "ratio_ci_high"]),
        without_bootstrap.frame.drop(
            columns=["ci_low", "ci_high", "ratio_ci_low", "ratio_ci_high"]
        ),
        check_exact=True,
    )


def test_rates_by_group_equal_the_metric_on_each_groups_rows() -> None:
    rng = np.random.default_rng(5)
    n, n_groups = 4000, 300  # many small groups: some without a labelled or selected row
    y = np.where(rng.random(n) < 0.2, rng.integers(0, 2, n), np.nan).astype(float)
    p = (rng.random(n) < 0.1).astype(float)
    weight = rng.integers(1, 50, n).astype(float)  # counts, as cells carry
    group = rng.integers(0, n_groups, n)
    for metric in METRICS_SPEC:
        rates, supports = metric.by_group(y, p, weight, group, n_groups)
        members = [group == g for g in range(n_groups)]
        expected = [metric(y[m], p[m], weight[m]) for m in members]
        np.testing.assert_array_equal(rates, expected)
        np.testing.assert_array_equal(
            supports, [metric.support(y[m], p[m], weight[m]) for m in members]
        )
    assert np.isnan(rates).any()  # empty denominators are NaN here too


def test_metric_frames_are_built_when_first_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = _audit._metric_frame

    def counting(attribute: str, cells: pd.DataFrame, *, with_score: bool) -> MetricFrame:
        built.append(attribute)
        return real(attribute, cells, with_score=with_score)

    monkeypatch.setattr(_audit, "_metric_frame", counting)
    y, fair_score, sensitive = _population(n=2000)
    result = fairness_audit(y, top_k_mask(fair_score, 200), fair_score, sensitive, n_boot=0)
    assert built == []  # training reads the table only
    first = str(sensitive.columns[0])
    assert list(result.metric_frames) == [str(c) for c in sensitive.columns]
    frame = result.metric_frames[first]
    assert result.metric_frames[first] is frame and built == [first]
    values = result.frame[
        (result.frame["attribute"] == first) & (result.frame["metric"] == "precision")
    ]
    np.testing.assert_array_equal(
        frame.by_group["precision"].to_numpy(), values["value"].to_numpy()
    )


def test_unlabelled_rows_count_for_selection_only() -> None:
    y = np.concatenate([TINY_Y, [np.nan, np.nan]])
    p = np.concatenate([TINY_P, [1, 0]])
    groups = pd.DataFrame({"attr": ["A"] * 4 + ["B"] * 6 + ["A"] * 2})
    f = fairness_audit(y, p, None, groups, min_group_size=1, n_boot=0).frame
    assert _value(f, "attr", "A", "selection_rate", "value") == pytest.approx(3 / 6)
    assert _value(f, "attr", "A", "selection_rate", "count") == 6
    assert _value(f, "attr", "A", "false_positive_rate", "value") == pytest.approx(1 / 2)
    assert _value(f, "attr", "A", "precision", "value") == pytest.approx(1 / 2)
    assert _value(f, "attr", "A", "precision", "support") == 2  # the unlabelled selected row is out
    assert _value(f, "attr", "A", "selection_rate", "support") == 6


def test_reference_defaults_to_the_largest_group_and_must_exist() -> None:
    result = fairness_audit(TINY_Y, TINY_P, None, TINY_GROUP, min_group_size=1, n_boot=0)
    assert result.reference_groups == {"attr": "B"}
    with pytest.raises(ValueError, match="reference group 'C'"):
        fairness_audit(TINY_Y, TINY_P, None, TINY_GROUP, reference_groups={"attr": "C"})
    with pytest.raises(ValueError, match="not in sensitive"):
        fairness_audit(TINY_Y, TINY_P, None, TINY_GROUP, reference_groups={"nope": "B"})


# --------------------------------------------------------------------------- biased vs fair


def _population(seed: int = 0, n: int = 20_000) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Equal base rates in every group; a model whose score depends on the outcome only."""
    rng = np.random.default_rng(seed)
    sensitive = pd.DataFrame(
        {
            "any_outside_europe": rng.random(n) < 0.3,
            "any_female_resident": rng.random(n) < 0.5,
            "district": rng.choice(["WK000101", "WK000102", "WK000103", "WK000104"], n),
        }
    )
    y = (rng.random(n) < 0.1).astype(float)
    fair_score = y + rng.normal(size=n)
    return y, fair_score, sensitive


def test_biased_scorer_fails_the_gate_naming_metric_and_attribute() -> None:
    y, fair_score, sensitive = _population()
    biased_score = fair_score + 1.2 * sensitive["any_outside_europe"].to_numpy()
    selected = top_k_mask(biased_score, 2000)
    result = fairness_audit(y, selected, biased_score, sensitive, n_boot=100)
    ratio = _value(result.frame, "any_outside_europe", "True", "selection_rate", "ratio")
    assert ratio > 2.5  # selected about three times as often at an equal base rate
    low = _value(result.frame, "any_outside_europe", "True", "selection_rate", "ratio_ci_low")
    assert low > 2.0

    verdict = fairness_gate(result, FairnessGateConfig())
    assert not verdict.passed
    pattern = (
        r"selection_rate ratio for any_outside_europe=True vs False is \d+\.\d\d, "
        r"outside \[0\.8, 1\.25\]"
    )
    assert any(re.fullmatch(pattern, reason) for reason in verdict.reasons), verdict.reasons
    assert all("any_outside_europe" in reason for reason in verdict.reasons)
    failed = verdict.checks[verdict.checks["status"] == "fail"]
    assert set(failed["attribute"]) == {"any_outside_europe"}


def test_fair_scorer_passes_the_gate() -> None:
    y, fair_score, sensitive = _population()
    selected = top_k_mask(fair_score, 2000)
    result = fairness_audit(y, selected, fair_score, sensitive, n_boot=100)
    verdict = fairness_gate(result, FairnessGateConfig())
    assert verdict.passed, verdict.reasons
    assert verdict.reasons == []
    # 2 checks x (1 + 1 + 3 non-reference groups)
    assert len(verdict.checks) == 10 and (verdict.checks["status"] == "pass").all()
    json.dumps(verdict.to_dict())


def test_bootstrap_intervals_are_seeded_and_contain_the_estimate() -> None:
    y, fair_score, sensitive = _population(n=5000)
    selected = top_k_mask(fair_score, 500)
    first = fairness_audit(y, selected, None, sensitive, n_boot=50, seed=3).frame
    again = fairness_audit(y, selected, None, sensitive, n_boot=50, seed=3).frame
    pd.testing.assert_frame_equal(first, again)
    rates = first.dropna(subset=["ci_low"])
    assert len(rates) == len(first)
    assert ((rates["ci_low"] <= rates["value"]) & (rates["value"] <= rates["ci_high"])).all()


# --------------------------------------------------------------------------- small groups


def test_small_groups_are_suppressed_and_skipped_not_failed() -> None:
    y, fair_score, sensitive = _population(n=4000)
    sensitive.loc[:4, "district"] = "WK000999"  # a district of 5 addresses...
    selected = top_k_mask(fair_score, 400)
    selected[:5] = True  # ...all of them selected: a selection-rate ratio of about 10
    result = fairness_audit(y, selected, None, sensitive, n_boot=20)

    raw = result.frame
    assert raw.loc[raw["group"] == "WK000999", "small_group"].all()
    assert _value(raw, "district", "WK000999", "selection_rate", "value") == 1.0

    shown = result.to_frame()
    tiny = shown[shown["group"] == "WK000999"]
    assert tiny["suppressed"].all()
    assert tiny[["count", "value", "ci_low", "ci_high", "support", "ratio"]].isna().all().all()
    serialised = json.dumps(result.to_dict())
    record = next(
        r
        for r in json.loads(serialised)["rows"]
        if r["group"] == "WK000999" and r["metric"] == "selection_rate"
    )
    assert record["value"] is None and record["count"] is None
    printed = [line for line in str(result).splitlines() if "WK000999" in line]
    assert len(printed) == 4 and not any(re.search(r"\d\.\d{3}", line) for line in printed)

    verdict = fairness_gate(result, FairnessGateConfig(attributes=("district",)))
    assert verdict.passed, verdict.reasons
    assert (
        "selection_rate ratio for district=WK000999 vs WK000102: skipped, "
        "group has fewer than 20 addresses"
    ) in verdict.notes
    tiny_checks = verdict.checks[verdict.checks["group"] == "WK000999"]
    assert (tiny_checks["status"] == "skipped").all() and tiny_checks["value"].isna().all()


def test_comparisons_with_a_small_reference_group_are_suppressed() -> None:
    y, fair_score, sensitive = _population(n=4000)
    sensitive.loc[:4, "district"] = "WK000999"
    selected = top_k_mask(fair_score, 400)
    result = fairness_audit(
        y, selected, None, sensitive, reference_groups={"district": "WK000999"}, n_boot=0
    )
    shown = result.to_frame()
    district = shown[shown["attribute"] == "district"]
    assert district[["difference", "ratio"]].isna().all().all()
    assert district.loc[district["group"] != "WK000999", "value"].notna().all()
    other = shown[shown["attribute"] == "any_female_resident"]
    assert other["ratio"].notna().all()


def test_rates_on_few_labelled_rows_are_skipped_by_the_gate() -> None:
    y, fair_score, sensitive = _population(n=4000)
    labelled = np.where(np.arange(4000) < 150, y, np.nan)  # 150 labelled rows: few negatives
    selected = top_k_mask(fair_score, 400)
    result = fairness_audit(labelled, selected, None, sensitive[["any_outside_europe"]], n_boot=0)
    verdict = fairness_gate(result, FairnessGateConfig(min_group_size=200))
    fpr = verdict.checks[verdict.checks["metric"] == "false_positive_rate"]
    assert (fpr["status"] == "skipped").all()
    assert "rests on fewer than 200" in fpr["note"].iloc[0]
    # Privacy: a precision resting on a handful of visit outcomes is not shown either.
    shown = result.to_frame().set_index(["metric", "group"])
    assert (shown.loc["precision", "support"].isna()).all()
    assert shown.loc["precision", "value"].isna().all()
    assert shown.loc["precision", "count"].notna().all()  # the groups themselves are large
    assert shown.loc["selection_rate", "value"].notna().all()


# --------------------------------------------------------------------------- gate config


def test_gate_refuses_unknown_metrics_and_inverted_bounds() -> None:
    with pytest.raises(ValidationError, match="unknown metrics"):
        FairnessGateConfig(metrics=("accuracy",))
    with pytest.raises(ValidationError):
        FairnessGateConfig(min_ratio=1.1)
    with pytest.raises(ValidationError):
        FairnessGateConfig(unknown_field=1)  # type: ignore[call-arg]


def test_gate_fails_when_a_configured_attribute_was_not_audited() -> None:
    result = fairness_audit(TINY_Y, TINY_P, None, TINY_GROUP, min_group_size=1, n_boot=0)
    verdict = fairness_gate(result, FairnessGateConfig(attributes=("district",), min_group_size=1))
    assert not verdict.passed
    assert verdict.reasons == [
        "selection_rate for district is not in the fairness audit",
        "false_positive_rate for district is not in the fairness audit",
    ]


def test_gate_limits_are_configurable() -> None:
    result = fairness_audit(
        TINY_Y, TINY_P, None, TINY_GROUP, reference_groups={"attr": "B"}, min_group_size=1, n_boot=0
    )
    strict = FairnessGateConfig(metrics=("false_negative_rate",), min_group_size=1)
    assert fairness_gate(result, strict).passed  # FNR ratio is exactly 1
    loose = FairnessGateConfig(metrics=("selection_rate",), max_ratio=3.5, min_group_size=1)
    assert fairness_gate(result, loose).passed  # selection ratio 3 within [0.8, 3.5]
    assert not fairness_gate(result, FairnessGateConfig(min_group_size=1)).passed


# --------------------------------------------------------------------------- proxies


def test_proxy_check_flags_a_noisy_copy_but_not_an_independent_feature() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    sensitive = pd.DataFrame(
        {
            "any_outside_europe": rng.random(n) < 0.3,
            "any_female_resident": rng.random(n) < 0.5,
            "district": rng.choice(["WK1", "WK2", "WK3"], n),
        }
    )
    attribute = sensitive["any_outside_europe"].to_numpy()
    missing_proxy = rng.normal(size=n)
    missing_proxy[attribute] = np.nan  # missing exactly where the attribute holds
    features = pd.DataFrame(
        {
            "noisy_copy": attribute + rng.normal(0.0, 0.5, n),
            "independent": rng.normal(size=n),
            "missing_proxy": missing_proxy,
            "categorical_proxy": np.where(attribute, rng.choice(["a", "b"], n), "c"),
            "categorical_noise": rng.choice(list("pqrstuvw"), n),
            "flag_noise": rng.random(n) < 0.5,
        }
    )
    table = proxy_check(features, sensitive, threshold=0.7)
    assert set(table["attribute"]) == {"any_outside_europe", "any_female_resident"}  # not district
    assert len(table) == 2 * features.shape[1]
    flagged = table[table["flagged"]]
    assert set(zip(flagged["feature"], flagged["attribute"], strict=True)) == {
        ("noisy_copy", "any_outside_europe"),
        ("missing_proxy", "any_outside_europe"),
        ("categorical_proxy", "any_outside_europe"),
    }
    noise = table[~table["flagged"]]
    assert noise["auc"].between(0.5, 0.6).all()
    assert table["auc"].is_monotonic_decreasing
