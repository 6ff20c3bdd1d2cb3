"""The service's ``feedback`` names the run whose plan a visit answers; random_sample is refused.

The endpoint function is called with a state that holds only the outcomes store (the
full service is started in ``test_service.py``, slow)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import cast

import pandas as pd
import pytest

from stratum_ml.serving import endpoints
from stratum_ml.serving.api_models import FeedbackRequest
from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.endpoints import RequestError
from stratum_ml.serving.outcomes import OutcomeStore, read_outcomes
from stratum_ml.store import Store

A = "0479010000000001"


def _state(store: Store) -> ServiceState:
    """The parts of a service state ``feedback`` reads: the outcome store and the
    sources' visit history (visits begin 2020-01-02, so the dates below are real)."""
    history = pd.DataFrame({"inspected_at": pd.to_datetime(["2020-01-02"])})
    tables = SimpleNamespace(inspections=history)
    return cast(ServiceState, SimpleNamespace(outcomes=OutcomeStore(store, [A]), tables=tables))


def _request(**changes: object) -> FeedbackRequest:
    body: dict[str, object] = {
        "address_id": A,
        "inspected_at": dt.date(2026, 10, 20),
        "reason": "risk_model",
        "outcome": "no_violation",
    }
    return FeedbackRequest.model_validate(body | changes)


def test_random_sample_cannot_be_typed_in(store: Store) -> None:
    with pytest.raises(RequestError) as refused:
        endpoints.feedback(_state(store), _request(reason="random_sample"), "k")
    assert refused.value.status == 422
    assert "random_sample' can no longer be typed in" in refused.value.message
    assert len(read_outcomes(store)) == 0


def test_a_visit_naming_an_unknown_run_is_refused(store: Store) -> None:
    with pytest.raises(RequestError) as refused:
        endpoints.feedback(_state(store), _request(run_id="0123456789abcdef"), "k")
    assert (
        refused.value.status == 422 and "no scoring run 0123456789abcdef" in refused.value.message
    )
    assert len(read_outcomes(store)) == 0


def test_a_visit_without_run_is_stored_and_is_no_design_visit(store: Store) -> None:
    answer = endpoints.feedback(_state(store), _request(), "k")
    assert answer.run_id is None and answer.inspection_id.startswith("svc-")
    assert len(read_outcomes(store)) == 1
