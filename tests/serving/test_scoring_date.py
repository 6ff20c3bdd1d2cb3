"""The service's scoring date: the extract date by default, never after it (fast)."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest

from stratum_ml.model.registry import ModelVersionInfo
from stratum_ml.serving.app_state import (
    ScoringDateError,
    ServingSettings,
    StartupError,
    scoring_date,
    source_extract,
)
from stratum_ml.serving.launch import LaunchError, LaunchPlan, preflight
from stratum_ml.sources import ExtractDate
from stratum_ml.sources.extract import LatestDate

DECLARED = ExtractDate(dt.date(2026, 11, 1), declared=True, latest=None)
DERIVED = ExtractDate(
    dt.date(2026, 11, 1),
    declared=False,
    latest=LatestDate(dt.date(2026, 10, 31), "reports.reported_at"),
)
TODAY = dt.date(2026, 12, 1)


@pytest.fixture(autouse=True)
def _no_as_of(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRATUM_AS_OF", raising=False)


def settings(as_of: dt.date | None) -> ServingSettings:
    return ServingSettings(sources=None, as_of=as_of)


def test_without_a_date_the_extract_date_is_served() -> None:
    assert scoring_date(settings(None), DECLARED, today=TODAY) == dt.date(2026, 11, 1)
    assert scoring_date(settings(None), DERIVED, today=TODAY) == dt.date(2026, 11, 1)


def test_a_date_on_or_before_the_extract_is_served() -> None:
    for day in (dt.date(2026, 11, 1), dt.date(2026, 6, 1)):
        assert scoring_date(settings(day), DECLARED, today=TODAY) == day


def test_a_date_after_the_extract_is_refused_naming_it() -> None:
    with pytest.raises(ScoringDateError) as caught:
        scoring_date(settings(dt.date(2026, 11, 2)), DERIVED, today=TODAY)
    message = str(caught.value)
    assert "the scoring date (STRATUM_AS_OF) 2026-11-02 is after the extract date" in message
    assert "2026-11-01 (derived: the day after the latest date the folder holds, " in message
    assert isinstance(caught.value, StartupError)  # the service's start-up fails on it


def test_a_date_in_the_future_is_still_refused() -> None:
    later = ExtractDate(dt.date(2027, 6, 1), declared=True, latest=None)
    with pytest.raises(ScoringDateError, match="lies in the future"):
        scoring_date(settings(dt.date(2027, 1, 1)), later, today=TODAY)
    with pytest.raises(ScoringDateError, match=r"defaults to the extract date .* future"):
        scoring_date(settings(None), later, today=TODAY)


def test_a_folder_without_a_usable_extract_date_cannot_start(tmp_path: Path) -> None:
    (tmp_path / "extract.json").write_text("not json", encoding="utf-8")
    with pytest.raises(StartupError, match="no usable extract date: extract.json cannot be read"):
        source_extract(tmp_path)


def test_the_start_up_line_says_which_date_and_why() -> None:
    info = ModelVersionInfo(
        name="stratum-risk",
        version="3",
        run_id="r",
        aliases=("champion",),
        tags={},
        trained_from=None,
        trained_until=None,
    )
    default = LaunchPlan(champion=info, as_of=dt.date(2026, 11, 1), extract=DECLARED)
    assert default.date_line == (
        "scoring as of 2026-11-01, the extract date of the sources (declared in extract.json)"
    )
    earlier = LaunchPlan(champion=info, as_of=dt.date(2026, 6, 1), extract=DERIVED)
    assert earlier.date_line.startswith(
        "scoring as of 2026-06-01; the extract date of the sources is 2026-11-01 (derived"
    )


def test_preflight_refuses_a_late_date_as_bad_usage(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "extract.json").write_text('{"extract_date": "2026-11-01"}\n', encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with pytest.raises(LaunchError, match=r"2026-11-01 \(declared in extract.json\)") as caught:
        preflight(sources, as_of=dt.date(2031, 1, 1), port=port)
    assert caught.value.exit_code == 2
