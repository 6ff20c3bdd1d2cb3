"""The request models (``stratum_ml.serving.api_models``): limits and strictness."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from stratum_ml.serving.api_models import (
    MAX_BATCH_CONTEXT,
    PauseRequest,
    PriorityListRequest,
    ScoreRequest,
    SummaryRequest,
    TopKRequest,
)

LIMIT = {MAX_BATCH_CONTEXT: 100}


@pytest.mark.parametrize(
    ("model", "verb"), [(PriorityListRequest, "lists"), (SummaryRequest, "counts")]
)
def test_k_is_held_to_the_batch_limit_by_one_validator(model: type[TopKRequest], verb: str) -> None:
    assert model.model_validate({"k": 100}, context=LIMIT).k == 100
    with pytest.raises(ValidationError, match=f"k is too large: this service {verb} at most 100"):
        model.model_validate({"k": 101}, context=LIMIT)
    # without the service's context no batch limit applies
    assert model.model_validate({"k": 5000}).k == 5000


def test_score_batch_is_held_to_the_batch_limit() -> None:
    ids = [f"04790100000{i:05d}" for i in range(101)]
    with pytest.raises(ValidationError, match="holds 101 entries; this service answers at most"):
        ScoreRequest.model_validate({"address_ids": ids}, context=LIMIT)
    assert (
        ScoreRequest.model_validate({"address_ids": ids[:100]}, context=LIMIT).audit_ids()
        == (ids[:100])
    )


def test_requests_are_strict_and_closed() -> None:
    with pytest.raises(ValidationError, match="k"):
        PriorityListRequest.model_validate({"k": "5"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        SummaryRequest.model_validate({"k": 5, "x": 1})


def test_a_pause_needs_a_reason_fit_to_store_and_a_resume_may_have_one() -> None:
    reason = "precision fell below current practice"
    assert PauseRequest.model_validate({"action": "pause", "reason": reason}).reason == reason
    assert PauseRequest.model_validate({"action": "resume"}).reason is None
    with pytest.raises(ValidationError, match="a pause needs a reason of at least 10"):
        PauseRequest.model_validate({"action": "pause"})
    with pytest.raises(ValidationError, match="10 to 500 characters"):
        PauseRequest.model_validate({"action": "pause", "reason": "bad model"})
    with pytest.raises(ValidationError, match="e-mail address") as info:
        PauseRequest.model_validate({"action": "resume", "reason": "ask j.jansen@example.nl"})
    assert "Nothing was stored" not in str(info.value)
    with pytest.raises(ValidationError, match="action"):
        PauseRequest.model_validate({"action": "stop", "reason": reason})


def test_violation_type_and_percentage_points_are_optional_additive_fields() -> None:
    from stratum_ml.evaluation.explain import Reason
    from stratum_ml.serving.api_models import ReasonOut, ScoredAddressOut

    reason = Reason("floor_area_m2", "bag", 31.0, 0.4, "raises", "small", contribution_pp=2.5)
    out = ReasonOut.of(reason)
    assert out.contribution_pp == 2.5
    assert ReasonOut.of(dataclasses.replace(reason, contribution_pp=None)).contribution_pp is None
    base = {
        "address_id": "0363010000000001",
        "probability": 0.4,
        "raw_score_log_odds": -0.4,
        "rank": 1,
        "percentile": 100.0,
        "district": None,
        "neighbourhood": None,
        "reasons": [out.model_dump()],
    }
    older = ScoredAddressOut.model_validate(base)  # an answer without them still validates
    assert older.violation_type is None and older.violation_type_share is None
    typed = ScoredAddressOut.model_validate(
        base | {"violation_type": "overcrowding", "violation_type_share": 0.61}
    )
    assert typed.model_dump()["violation_type"] == "overcrowding"
    properties = ScoredAddressOut.model_json_schema()["properties"]
    assert {"violation_type", "violation_type_share"} <= set(properties)
    assert "contribution_pp" in ReasonOut.model_json_schema()["properties"]
