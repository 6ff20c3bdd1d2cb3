"""The check against a generator's truth: true precision@k and the logged honest estimates."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from stratum_ml.evaluation.metrics import HonestEstimate
from stratum_ml.evaluation.truth import check_against_truth, true_precision
from stratum_ml.features.population import CURRENT_PRACTICE_FEATURE

AS_OF = dt.date(2025, 6, 1)
IDS = [f"04790100000000{i:02d}" for i in range(10)]


def _truth(violating: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "address_id": violating,
            "mechanism": "overcrowding",
            "start_date": pd.Timestamp("2024-01-01"),
            "end_date": pd.NaT,
        }
    )


def _honest(k: int, region_k: int, estimate: float) -> HonestEstimate:
    return HonestEstimate(
        estimate, 0.0, 1.0, 30, 10, k, region_k, len(IDS), 0.0, region_k > k, "wilson", 0.95, ""
    )


@pytest.fixture
def scores() -> pd.Series:
    return pd.Series(np.arange(10.0, 0.0, -1.0), index=IDS)  # IDS[0] ranks first


def test_true_precision_of_model_practice_and_random(scores: pd.Series) -> None:
    truth = _truth(IDS[:3] + [IDS[9]])
    practice = pd.Series([0, 0, 0, 0, 0, 0, 0, 0, 0, 5], index=IDS)  # only IDS[9] reported
    result = true_precision(scores, truth, AS_OF, ks=(2, 5, 50), practice=practice)
    p = result.set_index(["ranking", "k"])["true_precision"]
    assert p["model", 2] == 1.0 and p["model", 5] == pytest.approx(3 / 5)
    assert p["model", 50] == pytest.approx(0.4)  # k beyond the population: all of it
    assert p["random", 2] == pytest.approx(0.4)
    # one reported hit, then nine tied at 0 holding three hits: shared out in expectation
    assert p["current_practice", 2] == pytest.approx((1 + 3 / 9) / 2)
    lift = result.set_index(["ranking", "k"])["lift_over_random"]
    assert lift["model", 2] == pytest.approx(2.5) and lift["random", 5] == 1.0
    assert result.attrs == {"as_of": str(AS_OF), "prevalence": pytest.approx(0.4)}


def test_an_episode_that_ended_does_not_count(scores: pd.Series) -> None:
    truth = _truth([IDS[0]]).assign(end_date=pd.Timestamp("2025-01-01"))
    result = true_precision(scores, truth, AS_OF, ks=(1,))
    assert result.set_index("ranking").loc["model", "true_precision"] == 0.0


def test_each_honest_estimate_meets_the_truth_of_its_own_region(scores: pd.Series) -> None:
    truth = _truth(IDS[:2])
    honest = {2: _honest(2, 2, 0.9), 3: _honest(3, 5, 0.5)}
    features = pd.DataFrame({CURRENT_PRACTICE_FEATURE: np.zeros(10)}, index=IDS)
    check = check_against_truth(scores, truth, AS_OF, honest, features=features)
    assert check.as_of == AS_OF and check.prevalence == pytest.approx(0.2)
    assert check.table.index.tolist() == [2, 3, 5]
    assert check.table.loc[2, "model"] == 1.0 and check.table.loc[5, "model"] == 0.4
    assert check.table.loc[2, "honest_estimate"] == 0.9
    assert math.isnan(check.table.loc[3, "honest_estimate"])
    assert check.table.loc[5, "honest_estimate"] == 0.5
    assert check.table.loc[2, "current_practice"] == pytest.approx(0.2)


def test_without_the_practice_feature_that_column_is_empty(scores: pd.Series) -> None:
    check = check_against_truth(scores, _truth(IDS[:1]), AS_OF, {1: _honest(1, 1, 1.0)})
    assert check.table["current_practice"].isna().all()
