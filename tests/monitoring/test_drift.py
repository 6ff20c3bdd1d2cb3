"""PSI, missing rate, KS and the training range on constructed populations."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from stratum_ml.model.reference import DriftReference, build_reference
from stratum_ml.monitoring.drift import (
    PSI_EPSILON,
    DriftResult,
    DriftThresholds,
    compare,
    psi,
)

AS_OF = dt.date(2026, 1, 1)
N = 4000


def _population(rng: np.random.Generator, n: int = N) -> pd.DataFrame:
    water = rng.lognormal(3.5, 0.5, n)
    water[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "water_m3_year": water,
            "registered_persons": rng.poisson(2.0, n).astype(float),
            "tenure": pd.Categorical(
                rng.choice(["owner_occupied", "private_rent", "social_rent"], n)
            ),
        }
    )


@pytest.fixture(scope="module")
def reference() -> DriftReference:
    rng = np.random.default_rng(1)
    return build_reference(_population(rng), rng.normal(-3.0, 1.0, N), as_of=AS_OF)


def _now(seed: int = 2) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    return _population(rng), rng.normal(-3.0, 1.0, N)


# --------------------------------------------------------------------------- psi


def test_psi_of_equal_distributions_is_zero_and_counts_equal_shares() -> None:
    assert psi([10, 30, 60], [0.1, 0.3, 0.6]) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_the_formula() -> None:
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected)


def test_an_empty_bin_counts_as_epsilon() -> None:
    expected = (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5) + (1 - 0.5) * math.log(1 / 0.5)
    assert psi([1, 1], [0, 5]) == pytest.approx(expected)
    assert math.isfinite(psi([0, 1], [1, 0]))


def test_psi_refuses_bins_that_do_not_match_or_no_values() -> None:
    with pytest.raises(ValueError, match="bins differ"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="no values"):
        psi([0, 0], [1, 1])
    with pytest.raises(ValueError, match="negative"):
        psi([1, -1], [1, 1])


# --------------------------------------------------------------------------- reference


def test_the_reference_holds_deciles_missing_rate_range_and_categories() -> None:
    values = pd.Series([*range(1, 101), None, np.inf], dtype="float64")
    frame = pd.DataFrame({"x": values, "c": pd.Categorical(["a"] * 51 + ["b"] * 51)})
    ref = build_reference(frame, np.zeros(len(frame)), as_of=AS_OF)
    x = ref.features["x"]
    assert x.kind == "numeric"
    assert x.edges == (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)
    assert x.missing_rate == pytest.approx(2 / 102)  # infinity counts as missing
    assert (x.min, x.max) == (1.0, 100.0)
    assert sum(x.shares) == pytest.approx(1.0) and len(x.shares) == 10
    c = ref.features["c"]
    assert c.kind == "categorical" and c.categories == ("a", "b")
    assert c.shares == pytest.approx((51 / 102, 51 / 102, 0.0))


def test_repeated_deciles_merge_into_fewer_bins() -> None:
    flag = pd.DataFrame({"flag": [0.0] * 80 + [1.0] * 20})
    ref = build_reference(flag, np.zeros(100), as_of=AS_OF).features["flag"]
    assert ref.edges == (0.0, 1.0)
    assert ref.shares == pytest.approx((0.8, 0.2, 0.0))


def test_the_score_sample_is_bounded_and_the_reference_survives_json(
    reference: DriftReference,
) -> None:
    small = build_reference(
        pd.DataFrame({"x": np.arange(10.0)}), np.arange(10.0), as_of=AS_OF, score_sample=4
    )
    assert len(small.score.sample) == 4 and small.score.n == 10
    assert DriftReference.from_json(reference.to_json()) == reference


def test_the_reference_refuses_scores_that_do_not_fit() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="1 raw scores for 2"):
        build_reference(frame, np.zeros(1), as_of=AS_OF)
    with pytest.raises(ValueError, match="finite"):
        build_reference(frame, np.array([0.0, np.nan]), as_of=AS_OF)


# --------------------------------------------------------------------------- compare


def test_a_fresh_draw_of_the_same_population_has_not_drifted(reference: DriftReference) -> None:
    features, scores = _now()
    result = compare(reference, features, scores, as_of=AS_OF)
    assert not result.drifted, result.reasons
    assert result.reasons == () and result.warnings == ()
    assert all(f.psi is not None and f.psi < 0.02 for f in result.features)
    assert result.score.ks_statistic < 0.05
    assert result.out_of_range_share < 0.01


def test_halved_water_use_raises_a_psi_alarm_naming_the_feature(
    reference: DriftReference,
) -> None:
    features, scores = _now()
    features["water_m3_year"] /= 2
    result = compare(reference, features, scores)
    water = result.feature("water_m3_year")
    assert water.status == "alarm" and water.psi is not None and water.psi > 1.0
    assert result.features[0].feature == "water_m3_year"  # largest PSI first
    assert result.drifted
    assert any(r.startswith("water_m3_year: PSI") for r in result.reasons)
    assert result.feature("registered_persons").status == "ok"


def test_a_change_in_the_missing_rate_is_an_alarm_of_its_own(reference: DriftReference) -> None:
    features, scores = _now()
    features.loc[features.index[: N // 4], "registered_persons"] = np.nan
    result = compare(reference, features, scores)
    persons = result.feature("registered_persons")
    assert persons.missing_rate_change == pytest.approx(0.25)
    assert persons.psi is not None and persons.psi < 0.02  # what is left is the same
    assert persons.status == "alarm" and result.drifted
    assert any("registered_persons: missing for 25.0%" in r for r in result.reasons)


def test_values_outside_the_training_range_are_counted_per_feature_and_overall(
    reference: DriftReference,
) -> None:
    features, scores = _now()
    top = reference.features["registered_persons"].max
    assert top is not None
    features.loc[features.index[:200], "registered_persons"] = top + 5
    features["tenure"] = features["tenure"].cat.add_categories("student_housing")
    features.loc[features.index[200:400], "tenure"] = "student_housing"
    result = compare(reference, features, scores)
    assert result.feature("registered_persons").out_of_range_share == pytest.approx(0.05)
    assert result.feature("tenure").out_of_range_share == pytest.approx(0.05)
    assert result.out_of_range_share == pytest.approx(0.10, abs=0.005)
    assert any(
        "of addresses have a feature outside its training range" in r for r in result.reasons
    )


def test_a_shifted_score_fails_the_ks_check(reference: DriftReference) -> None:
    features, scores = _now()
    result = compare(reference, features, scores + 0.5)
    assert result.score.ks_statistic > 0.15 and result.score.ks_pvalue < 1e-10
    assert result.drifted and any(r.startswith("score: KS") for r in result.reasons)


def test_a_psi_over_too_few_values_warns_but_raises_no_alarm() -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, 100)
    ref = build_reference(pd.DataFrame({"x": x}), rng.normal(0, 1, 100), as_of=AS_OF)
    now = pd.DataFrame({"x": np.sort(x)[:100] / 3})  # inside the range, bunched low
    result = compare(ref, now, rng.normal(0, 1, 100))
    psi_x = result.feature("x").psi
    assert psi_x is not None and psi_x > 1
    assert not result.drifted, result.reasons
    assert result.warnings and "too few values" in result.warnings[0]
    strict = compare(ref, now, rng.normal(0, 1, 100), thresholds=DriftThresholds(min_values=50))
    assert strict.drifted and strict.reasons[0].startswith("x: PSI")


def test_an_accepted_feature_is_reported_but_never_an_alarm(reference: DriftReference) -> None:
    features, scores = _now()
    features["water_m3_year"] /= 2
    accepting = DriftThresholds(accepted={"water_m3_year": "meters were replaced"})
    result = compare(reference, features, scores, thresholds=accepting)
    assert not result.drifted
    assert result.feature("water_m3_year").accepted == "meters were replaced"
    assert any("accepted, because meters were replaced" in w for w in result.warnings)


def test_compare_refuses_what_it_cannot_judge(reference: DriftReference) -> None:
    features, scores = _now()
    with pytest.raises(ValueError, match="no feature shoe_size"):
        compare(reference, features.assign(shoe_size=1.0), scores)
    with pytest.raises(ValueError, match="empty"):
        compare(reference, features.iloc[:0], scores[:0])
    with pytest.raises(ValueError, match="psi_warn"):
        DriftThresholds(psi_warn=0.3, psi_alarm=0.2)


def test_the_result_is_json_and_flattens_to_metrics(reference: DriftReference) -> None:
    features, scores = _now()
    features["water_m3_year"] /= 2
    result = compare(reference, features, scores, as_of=AS_OF)
    assert DriftResult.from_json(result.to_json()) == result
    assert json.loads(result.to_json())["drifted"] is True
    metrics = result.metrics()
    assert metrics["drift_drifted"] == 1.0
    assert metrics["drift_psi_water_m3_year"] == result.feature("water_m3_year").psi
    assert metrics["drift_features_alarm"] == 1.0
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
