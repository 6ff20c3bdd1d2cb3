"""Visit feedback: a visit dated before the sources' visit history or in the future is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pandas as pd
import pytest

from stratum_ml.serving import endpoints
from stratum_ml.serving.api_models import FeedbackRequest
from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.outcomes import OutcomeStore, read_outcomes
from stratum_ml.store import Store, open_store

A = "0479010000000001"
FIRST_VISIT = dt.date(2019, 3, 4)
TODAY = dt.date(2026, 11, 20)
KEY_ID = "0123456789abcdef"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'stratum.db'}")


def _state(store: Store) -> ServiceState:
    inspections = pd.DataFrame(
        {"inspected_at": pd.to_datetime([FIRST_VISIT, dt.date(2024, 5, 1), None])}
    )
    return cast(
        ServiceState,
        SimpleNamespace(
            tables=SimpleNamespace(inspections=inspections), outcomes=OutcomeStore(store, [A])
        ),
    )


def _request(day: dt.date) -> FeedbackRequest:
    return FeedbackRequest(address_id=A, inspected_at=day, reason="report", outcome="no_violation")


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (dt.date(1900, 1, 1), "before the sources' visit history begins (2019-03-04"),
        (FIRST_VISIT - dt.timedelta(days=1), "before the sources' visit history begins"),
        (TODAY + dt.timedelta(days=1), "in the future"),
    ],
)
def test_an_impossible_visit_date_is_refused_without_echo(
    sqlite_store: Store, day: dt.date, why: str
) -> None:
    with pytest.raises(endpoints.RequestError) as refused:
        endpoints.feedback(_state(sqlite_store), _request(day), KEY_ID, today=TODAY)
    assert refused.value.status == 422
    assert why in refused.value.message
    assert day.isoformat() not in refused.value.message
    assert read_outcomes(sqlite_store).empty


@pytest.mark.parametrize("day", [FIRST_VISIT, TODAY])
def test_visits_from_the_first_visit_to_today_are_stored(sqlite_store: Store, day: dt.date) -> None:
    answer = endpoints.feedback(_state(sqlite_store), _request(day), KEY_ID, today=TODAY)
    assert answer.inspected_at == day
    assert len(read_outcomes(sqlite_store)) == 1
