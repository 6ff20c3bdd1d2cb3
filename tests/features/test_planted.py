"""The generator's planted mechanisms show in the point-in-time features."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from stratum_ml.features.build import build_feature_table
from stratum_ml.synthetic.generate import Municipality
from stratum_ml.synthetic.truth import truth_at

AS_OF = dt.date(2024, 6, 1)


@pytest.fixture(scope="module")
def features(small_town: Municipality) -> pd.DataFrame:
    return build_feature_table(small_town.sources, AS_OF)


def _auc(values: pd.Series, high: np.ndarray, low: np.ndarray) -> float:
    """P(a value from ``high`` exceeds one from ``low``), ignoring missing values."""
    from sklearn.metrics import roc_auc_score

    keep = (high | low) & values.notna().to_numpy()
    return float(roc_auc_score(high[keep], values.to_numpy()[keep]))


def _groups(small_town: Municipality, features: pd.DataFrame) -> dict[str, np.ndarray]:
    ids = features.index
    truth = small_town.truth
    rental = truth_at(truth, ids, AS_OF, ["illegal_room_rental", "overcrowding"])
    fraud = truth_at(truth, ids, AS_OF, "address_fraud")
    exploitation = truth_at(truth, ids, AS_OF, "exploitation")
    any_violation = truth_at(truth, ids, AS_OF)
    residential = (features["use_purpose"] == "woonfunctie").to_numpy()
    return {
        "rental": rental & residential,
        "fraud": fraud & residential,
        "exploitation": exploitation & residential,
        "clean": ~any_violation & residential,
    }


def test_room_rental_uses_more_water_per_registered_person(
    small_town: Municipality, features: pd.DataFrame
) -> None:
    g = _groups(small_town, features)
    ratio = features["water_ratio_to_expected"]
    assert g["rental"].sum() > 30
    assert ratio[g["rental"]].median() > 1.25 * ratio[g["clean"]].median()
    assert _auc(ratio, g["rental"], g["clean"]) > 0.65


def test_address_fraud_uses_less_water_per_registered_person(
    small_town: Municipality, features: pd.DataFrame
) -> None:
    g = _groups(small_town, features)
    ratio = features["water_ratio_to_expected"]
    assert g["fraud"].sum() > 30
    assert ratio[g["fraud"]].median() < 0.8 * ratio[g["clean"]].median()
    assert _auc(ratio, g["clean"], g["fraud"]) > 0.65


def test_exploitation_dwellings_have_short_stays_and_agency_links(
    small_town: Municipality, features: pd.DataFrame
) -> None:
    g = _groups(small_town, features)
    assert g["exploitation"].sum() > 5
    short = features["short_stay_share_24m"].fillna(0)
    assert short[g["exploitation"]].mean() > short[g["clean"]].mean() + 0.2
    owner = features["owner_dwellings"].fillna(0)
    assert owner[g["exploitation"]].median() > owner[g["clean"]].median()
