"""Endpoint answers repeat nothing a caller sent that failed validation (issue 11.1)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import cast

import pandas as pd
import pytest
from pydantic import ValidationError

from stratum_ml.serving import endpoints
from stratum_ml.serving.api_models import PriorityListRequest, ScoreRequest
from stratum_ml.serving.app_state import ServiceState

BSN = "111222333"
DWELLING, SHOP, NOWHERE = "0479010000000001", "0479010000000002", "0479019999999999"


def _state() -> ServiceState:
    use_purpose = pd.Series(
        ["woonfunctie", "winkelfunctie"], index=[DWELLING, SHOP], dtype="object"
    )
    model = SimpleNamespace(feature_names_in_=["floor_area_m2"], categories_={})
    run = SimpleNamespace(run_id="3f0c2a9e5b7d1a64")
    return cast(
        ServiceState,
        SimpleNamespace(use_purpose=use_purpose, model=model, as_of=dt.date(2026, 11, 1), run=run),
    )


def test_unknown_ids_are_reported_by_position_and_a_malformed_one_is_not_repeated() -> None:
    ids = [DWELLING, BSN, SHOP, BSN, NOWHERE]
    unknown = endpoints._unknown(_state(), ids, {BSN, SHOP, NOWHERE})
    assert [(u.position, u.address_id) for u in unknown] == [(1, None), (2, SHOP), (4, NOWHERE)]
    assert "16 digits" in unknown[0].reason and BSN not in unknown[0].reason
    assert ScoreRequest(address_ids=ids).audit_ids() == [DWELLING, SHOP, NOWHERE]


def test_unknown_feature_names_are_counted_not_repeated() -> None:
    rows = [{"floor_area_m2": 50.0, BSN: 1.0, "06-12345678": 2.0}]
    with pytest.raises(endpoints.RequestError) as refused:
        endpoints._feature_frame(_state(), rows)
    assert "row 0: 2 unknown features" in refused.value.message
    assert BSN not in refused.value.message and "1234" not in refused.value.message


def test_another_scoring_date_is_not_repeated() -> None:
    request = ScoreRequest(address_ids=[DWELLING], as_of=dt.date(1980, 3, 12))
    with pytest.raises(endpoints.RequestError) as refused:
        endpoints._check_as_of(_state(), request)
    assert "1980" not in refused.value.message and "2026-11-01" in refused.value.message


def test_a_k_out_of_range_is_not_repeated() -> None:
    with pytest.raises(ValidationError) as refused:
        PriorityListRequest.model_validate({"k": 10**30}, context={"max_batch_size": 100})
    assert str(10**30) not in str(refused.value).split("[type=")[0]
    assert "k is too large" in str(refused.value)
